/**
 * Signs certificates with the issuing (intermediate) CA. The CA decides every extension; nothing is
 * copied from a CSR but its public key and the names already checked by the CSR policy.
 * Shapes follow DESIGN §6 (X.509-SVID): one URI SAN, digitalSignature (critical), serverAuth +
 * clientAuth, CA:false (critical), AKI/SKI, not-before backdated, not-after ≤ the issuer's and its root's.
 */
import { WardenError } from '../errors.js';
import { randomSerial, x509, EC_P256, certificatePem, type CryptoKey } from './pki.js';

/**
 * Below this much intermediate life left, nothing is issued: a certificate capped at the issuer's
 * end would be (nearly) expired on arrival, and the CA's own server certificate would be re-issued
 * in a tight loop. The refusal is a server error: the client did nothing wrong and retries later.
 */
export const MIN_ISSUER_LIFE_MS = 60_000;

/** Who the certificate is for: a workload (SVID), the CA's own TLS server, the administrator (client only). */
export type CertificateUse = 'workload' | 'server' | 'admin';

export interface IssueRequest {
  publicKey: x509.PublicKey | CryptoKey;
  spiffeId: string;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  use: CertificateUse;
  /** RSA subject keys also get keyEncipherment (TLS 1.2 RSA key exchange). */
  rsa?: boolean;
  /** Overrides the issuer's default lifetime (ms), still capped by the issuer's not-after. */
  lifetimeMs?: number;
}

export interface IssuedCertificate {
  certificate: x509.X509Certificate;
  pem: string;
  /** Lower-case hex, no separators. */
  serial: string;
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
}

export interface IssuerOptions {
  intermediate: x509.X509Certificate;
  intermediateKey: CryptoKey;
  /**
   * The root the intermediate chains to: no certificate outlives it either (a leaf past its root's
   * end fails verification everywhere, with nothing in the CA's log to say why).
   */
  issuingRoot?: x509.X509Certificate;
  trustDomain: string;
  lifetimeMs: number;
  backdateMs: number;
  now?: () => number;
}

export interface Issuer {
  issue(request: IssueRequest): Promise<IssuedCertificate>;
  /** The end of the chain: the earliest not-after of the intermediate and its root. */
  readonly notAfter: Date;
}

const EKU: Record<CertificateUse, string[]> = {
  workload: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  server: [x509.ExtendedKeyUsage.serverAuth],
  admin: [x509.ExtendedKeyUsage.clientAuth],
};

export function createIssuer(options: IssuerOptions): Issuer {
  const { intermediate, intermediateKey, trustDomain, lifetimeMs, backdateMs } = options;
  const now = options.now ?? Date.now;
  const issuerSki = intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  if (!issuerSki) throw new Error('the intermediate certificate has no subject key identifier');

  // The chain's end: every certificate is capped at the earliest not-after of the intermediate and its root.
  const rootEndsFirst = options.issuingRoot !== undefined && options.issuingRoot.notAfter < intermediate.notAfter;
  const chainEnd = rootEndsFirst && options.issuingRoot ? options.issuingRoot.notAfter : intermediate.notAfter;
  const which = rootEndsFirst ? 'root CA certificate' : 'issuing CA certificate';

  return {
    notAfter: chainEnd,
    async issue(request) {
      const t = now();
      const left = chainEnd.getTime() - t;
      if (left < MIN_ISSUER_LIFE_MS) {
        throw new WardenError('ERR_CA_ISSUER_EXPIRED', {
          detail: `the ${which} ${left <= 0 ? 'expired' : 'is about to expire'} at ${chainEnd.toISOString()}: rotate it (warden ca init, docs/ca.md)`,
        });
      }
      // Backdated against clock skew, but never before the issuer itself became valid.
      const notBefore = new Date(Math.max(t - backdateMs, intermediate.notBefore.getTime()));
      const notAfter = new Date(Math.min(t + (request.lifetimeMs ?? lifetimeMs), chainEnd.getTime()));
      const serial = randomSerial();
      const names: x509.JsonGeneralNames = [
        { type: 'url', value: request.spiffeId },
        ...(request.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
        ...(request.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
      ];
      const usage = request.rsa
        ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
        : x509.KeyUsageFlags.digitalSignature;
      const certificate = await x509.X509CertificateGenerator.create({
        serialNumber: serial,
        subject: `O=${trustDomain}`,
        issuer: intermediate.subjectName,
        notBefore,
        notAfter,
        publicKey: request.publicKey,
        signingKey: intermediateKey,
        signingAlgorithm: EC_P256,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(usage, true),
          new x509.ExtendedKeyUsageExtension(EKU[request.use]),
          new x509.SubjectAlternativeNameExtension(names),
          await x509.SubjectKeyIdentifierExtension.create(request.publicKey),
          new x509.AuthorityKeyIdentifierExtension(issuerSki),
        ],
      });
      // The library may round dates to seconds: report what the certificate says.
      return {
        certificate,
        pem: certificatePem(certificate),
        serial,
        spiffeId: request.spiffeId,
        notBefore: certificate.notBefore,
        notAfter: certificate.notAfter,
      };
    },
  };
}
