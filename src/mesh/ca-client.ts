/**
 * The sidecar's client of the Warden CA (src/ca/api.ts): enroll, renew over mTLS, bundle, CRL.
 *
 * Every call verifies the CA's server certificate against roots the sidecar already trusts: the
 * configured bundle file, roots persisted from an earlier verified fetch, or — on first contact
 * with only `mesh.ca.fingerprint` — the one root of an unverified /v1/bundle answer whose SHA-256
 * matches the pinned fingerprint. Nothing is ever accepted unverified beyond that comparison.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';
import { CaApiError } from '../ca/admin-client.js';
import { CA_PATHS, type IssuedCredentials } from '../ca/api.js';
import type { MeshConfig } from '../config/types.js';

export interface CaClient {
  enroll(token: string, csrPem: string): Promise<IssuedCredentials>;
  /** mTLS with the current credentials; `csrPem` is for a new key. */
  renew(current: { keyPem: string; certPem: string }, csrPem: string): Promise<IssuedCredentials>;
  /** Every active root, PEM. */
  bundle(): Promise<string>;
  /** The CRL, DER. */
  crl(): Promise<Buffer>;
  /** Roots to verify the CA with from now on (after a verified bundle refresh). */
  trust(rootsPem: string): void;
  close(): Promise<void>;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function certificatesOf(pem: string): string[] {
  return pem.match(PEM_CERT) ?? [];
}

function fingerprintOfPem(pem: string): string {
  return `sha256:${createHash('sha256').update(new X509Certificate(pem).raw).digest('hex')}`;
}

function normaliseFingerprint(value: string): string {
  return `sha256:${value.slice('sha256:'.length).replace(/:/g, '').toLowerCase()}`;
}

/**
 * The roots to trust for the first call: `known` (persisted from a verified fetch), else the
 * bundle file, else the pinned fingerprint checked against the CA's own answer.
 */
export async function resolveCaTrust(cfg: MeshConfig['ca'], known: string | undefined): Promise<string> {
  if (known) return known;
  if (cfg.bundle) return readFileSync(cfg.bundle, 'utf8');
  if (!cfg.fingerprint) throw new Error('mesh.ca: neither bundle nor fingerprint is set');
  const pinned = normaliseFingerprint(cfg.fingerprint);
  const insecure = new Agent({
    connect: { rejectUnauthorized: false, timeout: cfg.timeout },
    headersTimeout: cfg.timeout,
    bodyTimeout: cfg.timeout,
  });
  try {
    const offered = await getText(insecure, `${base(cfg.url)}${CA_PATHS.bundle}`, cfg.timeout);
    const match = certificatesOf(offered).find((pem) => fingerprintOfPem(pem) === pinned);
    if (!match) throw new Error(`mesh.ca.fingerprint: the CA at ${cfg.url} offers no root with fingerprint ${pinned}`);
    return `${match}\n`;
  } finally {
    await insecure.close();
  }
}

const base = (url: string) => url.replace(/\/+$/, '');

async function getText(
  dispatcher: Dispatcher,
  url: string,
  timeoutMs: number,
  init: Partial<Dispatcher.RequestOptions> = {},
): Promise<string> {
  const res = await request(url, { dispatcher, signal: AbortSignal.timeout(timeoutMs), ...init });
  const text = await res.body.text();
  if (res.statusCode >= 400) throw problemError(res.statusCode, text);
  return text;
}

function problemError(status: number, text: string): CaApiError {
  let problem: { code?: string; title?: string; detail?: string } = {};
  try {
    problem = JSON.parse(text) as typeof problem;
  } catch {
    // not problem+json: report the status alone
  }
  return new CaApiError(status, problem.code ?? 'ERR_UNKNOWN', problem.title ?? 'CA refused the request', problem.detail);
}

export function createCaClient(cfg: MeshConfig['ca'], rootsPem: string): CaClient {
  let roots = rootsPem;
  const timeouts = { headersTimeout: cfg.timeout, bodyTimeout: cfg.timeout };
  let agent = new Agent({ connect: { ca: roots, timeout: cfg.timeout }, ...timeouts });
  const url = base(cfg.url);

  async function post(dispatcher: Dispatcher, path: string, body: unknown): Promise<IssuedCredentials> {
    const text = await getText(dispatcher, `${url}${path}`, cfg.timeout, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return JSON.parse(text) as IssuedCredentials;
  }

  return {
    enroll: (token, csrPem) => post(agent, CA_PATHS.enroll, { token, csr: csrPem }),
    async renew(current, csrPem) {
      const mtls = new Agent({ connect: { ca: roots, cert: current.certPem, key: current.keyPem, timeout: cfg.timeout }, ...timeouts });
      try {
        return await post(mtls, CA_PATHS.renew, { csr: csrPem });
      } finally {
        await mtls.close();
      }
    },
    bundle: () => getText(agent, `${url}${CA_PATHS.bundle}`, cfg.timeout),
    async crl() {
      const res = await request(`${url}${CA_PATHS.crl}`, { dispatcher: agent, signal: AbortSignal.timeout(cfg.timeout) });
      const body = Buffer.from(await res.body.arrayBuffer());
      if (res.statusCode >= 400) throw problemError(res.statusCode, body.toString('utf8'));
      return body;
    },
    trust(next) {
      if (next === roots) return;
      roots = next;
      const old = agent;
      agent = new Agent({ connect: { ca: roots, timeout: cfg.timeout }, ...timeouts });
      void old.close();
    },
    close: () => agent.close(),
  };
}

/** One line for logs and events: the CA's code when it refused, the network error otherwise. */
export function describeCaError(err: unknown): string {
  if (err instanceof CaApiError) return `${err.code} (HTTP ${err.status})`;
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  return e.cause?.code ?? e.code ?? e.name ?? 'error';
}
