/**
 * The Warden CA's HTTP API: paths and JSON shapes shared by the CA server (src/ca/) and its clients
 * (src/mesh/ enrollment and renewal, the `warden ca …` admin commands). Versioned under /v1.
 * Errors are RFC 9457 problem+json with a `code` from src/errors.ts (`ERR_CA_*`).
 */

export const CA_PATHS = {
  /** POST EnrollRequest → 201 IssuedCredentials. No client certificate; the bootstrap token authenticates. */
  enroll: '/v1/enroll',
  /** POST RenewRequest → 201 IssuedCredentials. mTLS with the current, unexpired, unrevoked certificate. */
  renew: '/v1/renew',
  /** GET → 200 `application/pem-certificate-chain`: every active root, PEM, concatenated. No auth. */
  bundle: '/v1/bundle',
  /** GET → 200 `application/pkix-crl`: DER CRL signed by the issuing CA. No auth. */
  crl: '/v1/crl',
  /** GET → 200 `application/pem-certificate-chain`: the issuing CA (intermediate) that signs certificates and the CRL now. No auth. */
  intermediate: '/v1/intermediate',
  /**
   * POST CreateTokenRequest → 201 CreatedToken; GET ?spiffe_id= → 200 { tokens: TokenRecord[] } (never
   * the token itself). mTLS with the admin identity.
   */
  adminTokens: '/v1/admin/tokens',
  /** POST RevokeTokensRequest → 200 RevokeTokensResult. mTLS with the admin identity. */
  adminTokenRevocations: '/v1/admin/token-revocations',
  /** POST RevokeRequest → 200 RevokeResult. mTLS with the admin identity. */
  adminRevocations: '/v1/admin/revocations',
  /** GET ?spiffe_id=&status= → 200 { certificates: CertificateRecord[] }. mTLS with the admin identity. */
  adminCertificates: '/v1/admin/certificates',
} as const;

export interface EnrollRequest {
  /** The bootstrap token as created by `warden ca token create`. */
  token: string;
  /** PKCS#10 CSR, PEM. Its URI SAN (if any) must equal the token's SPIFFE ID; DNS SANs must be granted by the token. */
  csr: string;
}

export interface RenewRequest {
  /** PKCS#10 CSR for a NEW key, PEM; same identity as the client certificate. */
  csr: string;
}

export interface IssuedCredentials {
  spiffe_id: string;
  /** Hex, lower case, no separators. */
  serial: string;
  /** ISO 8601. */
  not_before: string;
  not_after: string;
  /** The leaf certificate, PEM. */
  certificate: string;
  /** Intermediate certificate(s) up to (not including) the root, PEM. */
  chain: string;
  /** Trust bundle: every active root, PEM. */
  bundle: string;
}

export interface CreateTokenRequest {
  spiffe_id: string;
  dns_names?: string[];
  /** Lifetime of the token in seconds (default 3600). */
  ttl_seconds?: number;
}

export interface CreatedToken {
  /** Shown once; the CA stores only its SHA-256. */
  token: string;
  /** The token's public id (16 hex digits): what `warden ca token list|revoke` show and take. */
  id: string;
  spiffe_id: string;
  dns_names: string[];
  expires_at: string;
}

export type RevocationReason = 'unspecified' | 'keyCompromise' | 'superseded' | 'cessationOfOperation';

export interface RevokeRequest {
  /**
   * One of serial / spiffe_id. By identity revokes every unexpired certificate of that SPIFFE ID and
   * every unused bootstrap token for it (one transaction); by serial, that certificate alone.
   */
  serial?: string;
  spiffe_id?: string;
  reason?: RevocationReason;
}

export interface RevokeResult {
  /** Serials newly revoked. */
  revoked: string[];
  /** Ids of the bootstrap tokens newly revoked (by spiffe_id; always empty by serial). */
  revoked_tokens: string[];
  /**
   * Only when the revocations were committed but the CRL could not be re-signed: what failed. They
   * stand (a retry finds nothing to revoke); the CA signs a new CRL on the next `GET /v1/crl`.
   */
  crl_error?: string;
}

export interface TokenRecord {
  id: string;
  spiffe_id: string;
  dns_names: string[];
  /** ISO 8601. */
  created_at: string;
  expires_at: string;
  /** `revoked` and `used` win over `expired`: what happened to the token, if anything. */
  state: 'unused' | 'used' | 'expired' | 'revoked';
  used_at?: string;
  revoked_at?: string;
}

export interface RevokeTokensRequest {
  /** One of token_id (one token) / spiffe_id (every unused token of that identity). */
  token_id?: string;
  spiffe_id?: string;
}

export interface RevokeTokensResult {
  /** Ids of the tokens newly revoked: those still usable (unused, unexpired, not yet revoked). */
  revoked: string[];
}

export interface CertificateRecord {
  serial: string;
  spiffe_id: string;
  not_before: string;
  not_after: string;
  status: 'valid' | 'expired' | 'revoked';
  revoked_at?: string;
  /** How it was issued: first enrollment, renewal, the CA's own server certificate, the admin identity. */
  kind: 'enroll' | 'renew' | 'server' | 'admin';
}
