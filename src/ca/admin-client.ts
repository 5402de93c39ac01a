/**
 * Client of the CA's admin API (mTLS with the administrator certificate, trusting the CA's root):
 * what `warden ca token create|list|revoke`, `warden ca revoke|list` use, and what other tools and tests can use.
 */
import { Agent, request } from 'undici';
import {
  CA_PATHS,
  type CertificateRecord,
  type CreatedToken,
  type CreateTokenRequest,
  type RevokeRequest,
  type RevokeResult,
  type RevokeTokensRequest,
  type RevokeTokensResult,
  type TokenRecord,
} from './api.js';
import { X509Certificate } from 'node:crypto';
import { spiffeIdOfSubjectAltName, trustDomainOf } from '../net/spiffe-id.js';
import { checkCaIdentity } from './ca-identity.js';
import { loadAdminCredentials } from './layout.js';

export interface AdminClientOptions {
  /** `https://host:port` of the CA. */
  url: string;
  certPem: string;
  keyPem: string;
  passphrase?: string | undefined;
  /** Root(s) to trust for the CA's server certificate (bundle.pem). */
  bundlePem: string;
  timeoutMs?: number;
}

export interface CertificateQuery {
  spiffe_id?: string | undefined;
  status?: 'valid' | 'revoked' | 'expired' | undefined;
}

export interface AdminClient {
  createToken(request: CreateTokenRequest): Promise<CreatedToken>;
  revoke(request: RevokeRequest): Promise<RevokeResult>;
  listCertificates(query?: CertificateQuery): Promise<CertificateRecord[]>;
  listTokens(query?: { spiffe_id?: string | undefined }): Promise<TokenRecord[]>;
  revokeTokens(request: RevokeTokensRequest): Promise<RevokeTokensResult>;
  close(): Promise<void>;
}

/** A refusal from the CA: its problem+json, for a one-line message. */
export class CaApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    readonly detail: string | undefined,
  ) {
    super(`${title} (${code}, HTTP ${status})${detail ? `: ${detail}` : ''}`);
    this.name = 'CaApiError';
  }
}

export function createAdminClient(options: AdminClientOptions): AdminClient {
  const agent = new Agent({
    connect: {
      cert: options.certPem,
      key: options.keyPem,
      passphrase: options.passphrase,
      ca: options.bundlePem,
      // The bundle's roots also sign every workload, and one may hold the CA's DNS name: the server
      // must be the CA itself (its SPIFFE ID, of the admin certificate's trust domain).
      checkServerIdentity: checkCaIdentity(adminTrustDomain(options.certPem)),
    },
    headersTimeout: options.timeoutMs ?? 10_000,
    bodyTimeout: options.timeoutMs ?? 10_000,
  });
  const base = options.url.replace(/\/+$/, '');

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await request(`${base}${path}`, {
      method,
      dispatcher: agent,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    });
    const text = await res.body.text();
    if (res.statusCode >= 400) {
      let problem: { code?: string; title?: string; detail?: string } = {};
      try {
        problem = JSON.parse(text) as typeof problem;
      } catch {
        // not problem+json (a proxy in between): report the status alone
      }
      throw new CaApiError(res.statusCode, problem.code ?? 'ERR_UNKNOWN', problem.title ?? 'CA refused the request', problem.detail);
    }
    return JSON.parse(text) as T;
  }

  return {
    createToken: (req) => call<CreatedToken>('POST', CA_PATHS.adminTokens, req),
    revoke: (req) => call<RevokeResult>('POST', CA_PATHS.adminRevocations, req),
    async listCertificates(query = {}) {
      const params = new URLSearchParams();
      if (query.spiffe_id) params.set('spiffe_id', query.spiffe_id);
      if (query.status) params.set('status', query.status);
      const qs = params.size > 0 ? `?${params.toString()}` : '';
      return (await call<{ certificates: CertificateRecord[] }>('GET', `${CA_PATHS.adminCertificates}${qs}`)).certificates;
    },
    async listTokens(query = {}) {
      const qs = query.spiffe_id ? `?${new URLSearchParams({ spiffe_id: query.spiffe_id }).toString()}` : '';
      return (await call<{ tokens: TokenRecord[] }>('GET', `${CA_PATHS.adminTokens}${qs}`)).tokens;
    },
    revokeTokens: (req) => call<RevokeTokensResult>('POST', CA_PATHS.adminTokenRevocations, req),
    close: () => agent.close(),
  };
}

/** An admin client with the credentials of a CA directory (admin.crt, admin.key, bundle.pem); `caYaml` as loadAdminCredentials'. */
export function createAdminClientFromDir(url: string, dir: string, passphrase?: string, caYaml?: string): AdminClient {
  const credentials = loadAdminCredentials(dir, passphrase, caYaml);
  return createAdminClient({ url, ...credentials });
}

/** The trust domain of the admin certificate's SPIFFE ID (undefined if it has none). */
function adminTrustDomain(certPem: string): string | undefined {
  let id: string | undefined;
  try {
    id = spiffeIdOfSubjectAltName(new X509Certificate(certPem).subjectAltName);
  } catch {
    return undefined;
  }
  // spiffeIdOfSubjectAltName returns only valid IDs: no second parse.
  return id === undefined ? undefined : trustDomainOf(id);
}
