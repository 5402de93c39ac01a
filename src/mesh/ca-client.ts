/**
 * The sidecar's client of the Warden CA (src/ca/api.ts): enroll, renew over mTLS, bundle, CRL and its signer.
 *
 * Every call verifies the CA's server certificate against roots the sidecar already trusts: the
 * configured bundle file, the roots of bundle.pem that mesh.ca names (configuredRootsIn), or — on first contact
 * with only `mesh.ca.fingerprint` — the one root of an unverified /v1/bundle answer whose SHA-256
 * matches the pinned fingerprint. Nothing is ever accepted unverified beyond that comparison.
 *
 * Chaining to those roots is not enough: every workload certificate chains to them too, and a
 * workload may hold the CA's DNS name. So every connection also requires the CA's own SPIFFE ID
 * (`spiffe://<trust-domain>/warden/ca`, which no workload can get) as the server's URI SAN.
 */
import { clientSpan, traceHeaders } from '../telemetry/client-span.js';
import { createHash, X509Certificate } from 'node:crypto';
import { MAX_SECRET_FILE_BYTES, readFileBounded } from '../config/bounded-file.js';
import { Agent, request, type Dispatcher } from 'undici';
import { CaApiError } from '../ca/admin-client.js';
import { CA_PATHS, type IssuedCredentials } from '../ca/api.js';
import { checkCaIdentity, NotTheCaError } from '../ca/ca-identity.js';
import type { MeshConfig } from '../config/types.js';
import { assertUsableBundle, certificatesOf } from '../net/trust-bundle.js';
import { readCappedBody } from '../net/capped-body.js';

export { certificatesOf } from '../net/trust-bundle.js';

/**
 * The CA could not be asked (as opposed to CaApiError: it answered and refused). `code` tells an
 * outage (ERR_CA_UNAVAILABLE), a slow CA (ERR_CA_TIMEOUT), a CA we do not trust (ERR_CA_UNTRUSTED)
 * and an answer past its size limit (ERR_CA_ANSWER_TOO_LARGE, see ANSWER_LIMITS) apart; the network
 * error is the `cause`.
 */
export class CaUnavailableError extends Error {
  constructor(
    readonly code: 'ERR_CA_UNAVAILABLE' | 'ERR_CA_TIMEOUT' | 'ERR_CA_UNTRUSTED' | 'ERR_CA_ANSWER_TOO_LARGE',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CaUnavailableError';
  }
}

// OpenSSL verification failures: the CA answered with a certificate we must not accept.
const UNTRUSTED = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH/;

function notTheCa(err: unknown): NotTheCaError | undefined {
  for (let e = err as { cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++)
    if (e instanceof NotTheCaError) return e;
  return undefined;
}

/** Network-level failures of a CA call as a CaUnavailableError; refusals (CaApiError) pass through. */
function transportError(err: unknown, url: string, timeoutMs: number): unknown {
  if (err instanceof CaApiError || err instanceof CaUnavailableError) return err;
  const impostor = notTheCa(err);
  if (impostor) return new CaUnavailableError('ERR_CA_UNTRUSTED', `${url}: not the Warden CA: ${impostor.message}`, { cause: impostor });
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = e.cause?.code ?? e.code ?? e.name;
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || /TIMEOUT/.test(code ?? ''))
    return new CaUnavailableError('ERR_CA_TIMEOUT', `${url}: no complete answer within ${timeoutMs} ms`, { cause: err });
  if (UNTRUSTED.test(code ?? ''))
    return new CaUnavailableError('ERR_CA_UNTRUSTED', `${url}: the CA's certificate is not trusted (${code})`, { cause: err });
  return new CaUnavailableError('ERR_CA_UNAVAILABLE', `${url}: ${code ?? 'unreachable'}`, { cause: err });
}

/**
 * The most a CA answer may hold; the body is read as it arrives and the call aborted past it, so a
 * server on mesh.ca.url (unverified at first contact) cannot fill the sidecar's memory. Bundles,
 * certificates and problem documents are a few KiB. A CRL entry is ~40-60 bytes: 10 000
 * revocations are ~0.5 MiB, 50 000 ~2.5 MiB (docs/ca.md), so 16 MiB leaves room for ~300 000.
 */
export const ANSWER_LIMITS = { default: 1024 * 1024, crl: 16 * 1024 * 1024 } as const;

/** A conditional CRL fetch: unchanged (304), or the CRL and its ETag. */
export type CrlFetch = { changed: false } | { changed: true; der: Buffer; etag: string | undefined };

export interface CaClient {
  enroll(token: string, csrPem: string): Promise<IssuedCredentials>;
  /** mTLS with the current credentials; `csrPem` is for a new key. */
  renew(current: { keyPem: string; certPem: string }, csrPem: string): Promise<IssuedCredentials>;
  /** Every active root, PEM. */
  bundle(): Promise<string>;
  /** The CRL, DER. */
  crl(): Promise<Buffer>;
  /** The CRL unless its ETag is still `etag` (If-None-Match → 304): sidecars refetch every minute. */
  crlSince(etag: string | undefined): Promise<CrlFetch>;
  /** The issuing CA certificate the CA signs with now, PEM (unverified: check that it chains to the bundle). */
  intermediate(): Promise<string>;
  /** Roots to verify the CA with from now on (after a verified bundle refresh); throws BundleError on one without certificates. */
  trust(rootsPem: string): void;
  close(): Promise<void>;
}

function fingerprintOfPem(pem: string): string {
  return `sha256:${createHash('sha256').update(new X509Certificate(pem).raw).digest('hex')}`;
}

function normaliseFingerprint(value: string): string {
  return `sha256:${value.slice('sha256:'.length).replace(/:/g, '').toLowerCase()}`;
}

/** The roots `mesh.ca.fingerprint` pins: one, or several while a root is rotated. */
function pinnedFingerprints(cfg: MeshConfig['ca']): Set<string> {
  const given = cfg.fingerprint === undefined ? [] : Array.isArray(cfg.fingerprint) ? cfg.fingerprint : [cfg.fingerprint];
  return new Set(given.map(normaliseFingerprint));
}

/**
 * The roots of a saved bundle (bundle.pem in mesh.state_dir) that `mesh.ca` names — by its pinned
 * fingerprint(s), or as a certificate of its bundle file — in `kept` (PEM, '' when none), and the
 * SHA-256 fingerprints of the others in `dropped`.
 *
 * The rule for a saved bundle: a root in it is trusted only if the configuration names it. The file
 * can be written while the sidecar is stopped; a root added there (the real one plus an attacker's)
 * was trusted whole, and with the CA unreachable a certificate that root signed, for any SPIFFE ID,
 * was admitted. A root the configuration does not name is trusted again only once the CA's bundle
 * is fetched over a connection verified against the kept roots (trust-refresh.ts) — which is how a
 * root rotation's new root arrives; the rotation steps therefore add the new root to `mesh.ca`
 * first (docs/mesh-identity.md), and a sidecar that restarts before then, with the CA down, trusts
 * the old root alone until the CA answers.
 *
 * `kept` empty is state of another CA (the operator replaced it, perhaps because it was
 * compromised): neither its roots nor its certificate nor its CRL are used.
 */
export function configuredRootsIn(cfg: MeshConfig['ca'], bundlePem: string): { kept: string; dropped: string[] } {
  const named = configuredFingerprints(cfg);
  const kept: string[] = [];
  const dropped: string[] = [];
  for (const pem of certificatesOf(bundlePem)) {
    const fingerprint = fingerprintOfPem(pem);
    if (named === undefined || named.has(fingerprint)) kept.push(pem);
    else dropped.push(fingerprint);
  }
  return { kept: kept.length ? `${kept.join('\n')}\n` : '', dropped };
}

/** The fingerprints of the roots `mesh.ca` names; undefined when it names none (the loader refuses that). */
function configuredFingerprints(cfg: MeshConfig['ca']): Set<string> | undefined {
  if (cfg.fingerprint) return pinnedFingerprints(cfg);
  if (cfg.bundle) return new Set(certificatesOf(readFileBounded(cfg.bundle, MAX_SECRET_FILE_BYTES).toString('utf8')).map(fingerprintOfPem));
  return undefined;
}

/** Whether a saved bundle holds a root `mesh.ca` names at all (see configuredRootsIn). */
export function bundleNamesConfiguredRoot(cfg: MeshConfig['ca'], bundlePem: string): boolean {
  return configuredRootsIn(cfg, bundlePem).kept !== '';
}

/**
 * The roots to trust for the first call: those of `saved` (bundle.pem, persisted from a verified
 * fetch) that `mesh.ca` names (configuredRootsIn), else the bundle file, else the pinned
 * fingerprint checked against the CA's own answer — and then a verified call under that root, so
 * the server we asked is the CA itself (the root is public: anyone can serve it).
 */
export async function resolveCaTrust(cfg: MeshConfig['ca'], saved: string | undefined, trustDomain?: string): Promise<string> {
  const known = saved === undefined ? '' : configuredRootsIn(cfg, saved).kept;
  if (known) return known;
  if (cfg.bundle) return readFileBounded(cfg.bundle, MAX_SECRET_FILE_BYTES).toString('utf8');
  if (!cfg.fingerprint) throw new Error('mesh.ca: neither bundle nor fingerprint is set');
  const pinned = pinnedFingerprints(cfg);
  const insecure = new Agent({
    connect: { rejectUnauthorized: false, timeout: cfg.timeout },
    headersTimeout: cfg.timeout,
    bodyTimeout: cfg.timeout,
  });
  try {
    const offered = await getText(insecure, `${base(cfg.url)}${CA_PATHS.bundle}`, cfg.timeout);
    // Every offered root pinned: during a rotation the CA's own certificate chains to the new one.
    const matches = certificatesOf(offered).filter((pem) => pinned.has(fingerprintOfPem(pem)));
    if (matches.length === 0)
      throw new CaUnavailableError(
        'ERR_CA_UNTRUSTED',
        `mesh.ca.fingerprint: the CA at ${cfg.url} offers no root with fingerprint ${[...pinned].join(' or ')}`,
      );
    const match = matches.join('\n');
    const verified = caAgent(cfg, `${match}\n`, trustDomain);
    try {
      await getText(verified, `${base(cfg.url)}${CA_PATHS.bundle}`, cfg.timeout);
    } finally {
      await verified.close();
    }
    return `${match}\n`;
  } finally {
    await insecure.close();
  }
}

/** An agent that accepts only the CA: chains to `roots`, right host name, the CA's SPIFFE ID. */
function caAgent(
  cfg: MeshConfig['ca'],
  roots: string,
  trustDomain: string | undefined,
  client?: { certPem: string; keyPem: string },
): Agent {
  return new Agent({
    connect: {
      ca: roots,
      timeout: cfg.timeout,
      checkServerIdentity: checkCaIdentity(trustDomain),
      ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
    },
    headersTimeout: cfg.timeout,
    bodyTimeout: cfg.timeout,
  });
}

const base = (url: string) => url.replace(/\/+$/, '');

async function getText(
  dispatcher: Dispatcher,
  url: string,
  timeoutMs: number,
  init: Partial<Dispatcher.RequestOptions> = {},
): Promise<string> {
  return (await exchange(dispatcher, url, timeoutMs, init)).body.toString('utf8');
}

interface CaResponse {
  status: number;
  etag: string | undefined;
  body: Buffer;
}

/** One call, bounded as a whole (connect, headers and body) by `timeoutMs`, in a client span. */
function exchange(
  dispatcher: Dispatcher,
  url: string,
  timeoutMs: number,
  init: Partial<Dispatcher.RequestOptions> = {},
  maxBytes: number = ANSWER_LIMITS.default,
): Promise<CaResponse> {
  const target = new URL(url);
  const method = init.method ?? 'GET';
  return clientSpan(
    `ca ${method} ${target.pathname}`,
    { 'http.request.method': method, 'server.address': target.hostname, 'url.path': target.pathname },
    undefined,
    // The CA's server span continues this one (it exports to the same collector).
    (span) =>
      callCa(dispatcher, url, timeoutMs, maxBytes, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), ...traceHeaders(span) },
      }),
  );
}

async function callCa(
  dispatcher: Dispatcher,
  url: string,
  timeoutMs: number,
  maxBytes: number,
  init: Partial<Dispatcher.RequestOptions>,
): Promise<CaResponse> {
  try {
    const res = await request(url, { dispatcher, signal: AbortSignal.timeout(timeoutMs), ...init });
    const body = await readCappedBody(
      res.body,
      maxBytes,
      () => new CaUnavailableError('ERR_CA_ANSWER_TOO_LARGE', `${url}: the answer passed ${maxBytes} bytes; refused unread`),
    );
    if (res.statusCode >= 400) throw problemError(res.statusCode, body.toString('utf8'));
    const etag = res.headers.etag;
    return { status: res.statusCode, etag: typeof etag === 'string' ? etag : undefined, body };
  } catch (err) {
    throw transportError(err, url, timeoutMs);
  }
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

/** `trustDomain`: the sidecar's, whose CA (`spiffe://<trustDomain>/warden/ca`) alone is accepted. */
export function createCaClient(cfg: MeshConfig['ca'], rootsPem: string, trustDomain?: string): CaClient {
  let roots = rootsPem;
  let agent = caAgent(cfg, roots, trustDomain);
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
      const mtls = caAgent(cfg, roots, trustDomain, current);
      try {
        return await post(mtls, CA_PATHS.renew, { csr: csrPem });
      } finally {
        await mtls.close();
      }
    },
    bundle: () => getText(agent, `${url}${CA_PATHS.bundle}`, cfg.timeout),
    crl: async () => (await exchange(agent, `${url}${CA_PATHS.crl}`, cfg.timeout, {}, ANSWER_LIMITS.crl)).body,
    async crlSince(etag) {
      const headers = etag ? { headers: { 'if-none-match': etag } } : {};
      const res = await exchange(agent, `${url}${CA_PATHS.crl}`, cfg.timeout, headers, ANSWER_LIMITS.crl);
      return res.status === 304 ? { changed: false } : { changed: true, der: res.body, etag: res.etag };
    },
    intermediate: () => getText(agent, `${url}${CA_PATHS.intermediate}`, cfg.timeout),
    trust(next) {
      if (next === roots) return;
      assertUsableBundle(next, 'the CA client refuses the new roots'); // an empty one would lock us out of the CA
      roots = next;
      const old = agent;
      agent = caAgent(cfg, roots, trustDomain);
      old.close().catch(() => {}); // in-flight calls finish on it; a failed close changes nothing
    },
    close: () => agent.close(),
  };
}

/** One line for logs and events: the CA's code when it refused, ERR_CA_UNAVAILABLE/… (and the network code) otherwise. */
export function describeCaError(err: unknown): string {
  if (err instanceof CaApiError) return `${err.code} (HTTP ${err.status})`;
  if (err instanceof CaUnavailableError) {
    const cause = err.cause as NodeJS.ErrnoException | undefined;
    const detail = (cause as { cause?: NodeJS.ErrnoException } | undefined)?.cause?.code ?? cause?.code;
    return detail && err.code !== 'ERR_CA_TIMEOUT' ? `${err.code} (${detail})` : err.code;
  }
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  return e.cause?.code ?? e.code ?? e.name ?? 'error';
}
