/**
 * Loads sidecar.yaml: YAML with positions → ${…} substitution → JSON Schema (defaults, units) →
 * checks that need more than the schema (unique route ids, TLS files that load and match).
 * Every problem becomes a ConfigIssue naming file, line and field; all are reported at once.
 */
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { ErrorObject } from 'ajv';
import { isLoopbackBindHost } from '../net/loopback.js';
import { closest } from './closest-name.js';
import { trustDomainOf } from '../net/spiffe-id.js';
import { destinationIdProblem } from '../net/destination-id.js';
import {
  ConfigError,
  formatFieldPath,
  isSecretValue,
  never,
  shownValue,
  substitutionMask,
  withSubstitutionsMasked,
  type ConfigIssue,
  type Hidden,
} from './config-error.js';
import { sidecarSchema } from './sidecar-schema.js';
import { costProblem } from './rate-limit-schema.js';
import { routeSettingsOf } from './route-settings.js';
import { tokensIssues } from './tokens-check.js';
import type { RateLimitConfig, SidecarConfig } from './types.js';
import { createConfigAjv, type ContextValidator } from './validator.js';
import { BLANK_VALUE_MESSAGE, blankValues, readYamlSource, parseYamlSource, type YamlSource } from './yaml-source.js';
import { MAX_SECRET_FILE_BYTES, readFailure, readFileBounded } from './bounded-file.js';
import { caFileProblem } from '../net/ca-file.js';
import { trustedProxyHeaderProblem } from '../net/proxy-asserted.js';
import { withoutUrlCredentials } from '../net/url-credentials.js';
import { endpointFieldProblem } from './otlp-endpoints.js';
import { ClientCrlError, MAX_CLIENT_CRL_BYTES, readClientCrl, type ClientCrl } from '../net/client-crl.js';

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  passphrase: string | undefined;
  clientCa: Buffer | undefined;
  /** listeners.inbound.tls.client_crl, verified against clientCa (file mode only). */
  clientCrl?: ClientCrl | undefined;
}

export interface LoadedSidecarConfig {
  file: string;
  config: SidecarConfig;
  /** Certificate files of listeners.inbound.tls; undefined with mesh, which supplies its own. */
  tls: TlsMaterial | undefined;
  /** Line of a field, for reporting later findings (e.g. from compilePlan) at the right place. */
  lineOf: (segments: readonly (string | number)[]) => number | undefined;
  /** An issue at a field; its message has the file's substituted values masked (substitutionMask). */
  issue: (segments: readonly (string | number)[], message: string) => ConfigIssue;
  /**
   * `text` with the file's substituted values and any URL's credentials masked: for messages that
   * are not issues (a reload's failure, `config check`'s other errors).
   */
  mask: (text: string) => string;
}

let validateSidecar: ContextValidator | undefined;

/** `reload`: read again by a running sidecar (SIGHUP), where the file may not be a FIFO. */
export function loadSidecarConfig(file: string, env: NodeJS.ProcessEnv = process.env, reload = false): LoadedSidecarConfig {
  return fromSource(readYamlSource(file, env, reload));
}

/** Same as loadSidecarConfig, from text already in memory (tests, `warden dev`). */
export function parseSidecarConfig(file: string, text: string, env: NodeJS.ProcessEnv = process.env): LoadedSidecarConfig {
  return fromSource(parseYamlSource(file, text, env));
}

function fromSource(source: YamlSource): LoadedSidecarConfig {
  try {
    return checked(source);
  } catch (err) {
    throw withSubstitutionsMasked(err, source.substitutedValues ?? []);
  }
}

function checked(source: YamlSource): LoadedSidecarConfig {
  validateSidecar ??= createConfigAjv().compile(sidecarSchema) as ContextValidator;
  const data = source.data;
  const mask = substitutionMask(source.substitutedValues ?? []);
  // Masked here too: issues found after loading (the OpenAPI document, the plan) skip fromSource's masking.
  const issue = (segments: readonly (string | number)[], message: string): ConfigIssue => ({
    file: source.file,
    line: source.lineOf(segments),
    field: formatFieldPath(segments),
    message: mask(message),
  });

  const blanks = blankValues(data);
  if (blanks.length > 0) throw new ConfigError(blanks.map((at) => issue(at, BLANK_VALUE_MESSAGE)));
  if (!validateSidecar.call({ baseDir: source.baseDir }, data)) {
    throw new ConfigError(byLine(schemaIssues(validateSidecar.errors ?? [], issue, source.substituted ?? never)));
  }
  const config = data as SidecarConfig;
  const issues = [...semanticIssues(config, issue)];
  const tls = loadTlsMaterial(config, issue, issues);
  if (issues.length > 0) throw new ConfigError(byLine(issues));
  return { file: source.file, config, tls, lineOf: source.lineOf, issue, mask: (text) => withoutUrlCredentials(mask(text)) };
}

/** Issues in file order, so the list reads top to bottom like the file. */
function byLine(issues: ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

type IssueAt = (segments: readonly (string | number)[], message: string) => ConfigIssue;

function pointerSegments(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function schemaIssues(errors: readonly ErrorObject[], issue: IssueAt, substituted: Hidden): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const at = pointerSegments(e.instancePath);
    let issueFound: ConfigIssue;
    if (e.keyword === 'required') {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      const expect = expectOf((e.parentSchema as { properties?: Record<string, object> })?.properties?.[missing]);
      issueFound = issue(at, `"${missing}" is required${expect ? ` (${expect})` : ''}`);
      issueFound.field = formatFieldPath([...at, missing]);
    } else if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      const hint = closest(extra, known);
      issueFound = issue([...at, extra], `unknown key${hint ? `; did you mean "${hint}"?` : ''} (allowed: ${known.join(', ')})`);
    } else {
      const expect = expectOf(e.parentSchema);
      const got = shownValue(e.data, isSecretValue(sidecarSchema, e.schemaPath, e.parentSchema), substituted(at));
      issueFound = issue(at, expect ? `must be ${expect}, got ${got}` : `${e.message ?? 'is invalid'}, got ${got}`);
    }
    const key = `${issueFound.field}:${issueFound.message}`;
    // One message per field: a wrong value often breaks several keywords (type and minimum).
    if (seen.has(issueFound.field) && e.keyword !== 'additionalProperties' && e.keyword !== 'required') continue;
    if (seen.has(key)) continue;
    seen.add(issueFound.field);
    seen.add(key);
    out.push(issueFound);
  }
  return out;
}

function expectOf(schema: unknown): string | undefined {
  return (schema as { 'x-expect'?: string } | undefined)?.['x-expect'];
}

/**
 * Why the sidecar could not write request bodies into `dir`, or undefined. Found at load, not on the
 * first upload that spills to disk (each got 500 with a missing directory).
 */
function writableDirectoryProblem(dir: string): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
    accessSync(dir, fsConstants.W_OK | fsConstants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? `${dir} does not exist: create it (request bodies that spill to disk go there)`
      : `${dir} cannot be written (${code ?? 'error'})`;
  }
}

function* semanticIssues(config: SidecarConfig, issue: IssueAt): Generator<ConfigIssue> {
  const ids = new Map<string, number>();
  for (const [i, route] of config.routes.entries()) {
    const first = ids.get(route.id);
    if (first !== undefined) yield issue(['routes', i, 'id'], `duplicate route id "${route.id}" (first used by routes[${first}])`);
    else ids.set(route.id, i);
  }
  for (const [i, entry] of config.headers.trusted_proxy_headers.entries()) {
    const problem = trustedProxyHeaderProblem(entry);
    if (problem) yield issue(['headers', 'trusted_proxy_headers', i], problem);
  }
  // `x-user-` was matched as an exact name, so `x-user-id: admin` reached the backend: a header name
  // ending in "-" is a prefix that lost its "*" (red team 28 §7).
  for (const [i, name] of config.headers.internal.entries())
    if (name.endsWith('-'))
      yield issue(
        ['headers', 'internal', i],
        `"${name}" ends in "-", as no header name does: did you mean "${name}*" (every header starting "${name}")? Exact names are matched whole`,
      );
  const endpointProblem = endpointFieldProblem(config.telemetry.otlp?.endpoint);
  if (endpointProblem !== undefined) yield issue(['telemetry', 'otlp', 'endpoint'], endpointProblem);
  const tls = config.listeners.inbound.tls;
  if (!config.mesh && (!tls.cert || !tls.key)) {
    yield issue(
      ['listeners', 'inbound', 'tls', tls.cert ? 'key' : 'cert'],
      'is required unless mesh provides the workload certificate (tls: { cert: FILE, key: FILE })',
    );
  }
  if (config.mesh && !config.mesh.ca.bundle && !config.mesh.ca.fingerprint) {
    yield issue(['mesh', 'ca'], 'needs bundle (a PEM file with the CA root) or fingerprint ("sha256:…") to trust the CA on first contact');
  }
  // Checked here as the TLS files are: it was read only at startup, whole (/dev/zero: 1.13 GB in 6 s), and `config check` called it valid.
  if (config.mesh?.ca.bundle !== undefined) {
    const path = config.mesh.ca.bundle;
    let data: Buffer | undefined;
    try {
      data = readFileBounded(path, MAX_SECRET_FILE_BYTES);
    } catch (err) {
      yield issue(['mesh', 'ca', 'bundle'], `cannot read ${path} (${readFailure(err)})`);
    }
    // As client_ca: a root in DER, or a file cut short, left the first contact with the CA trusting nothing.
    const problem = data && caFileProblem(path, data, "give the CA's root (bundle.pem from warden ca init)");
    if (problem !== undefined) yield issue(['mesh', 'ca', 'bundle'], problem);
  }
  if (config.egress && !config.mesh) yield issue(['egress'], 'needs mesh: egress calls authenticate with the workload certificate');
  // Plain HTTP that calls every service with the workload's identity: only this machine may reach it.
  if (config.egress && !isLoopbackBindHost(config.egress.host)) {
    yield issue(
      ['egress', 'host'],
      `must be a loopback address (127.0.0.1, ::1 or localhost), got "${config.egress.host}": anyone who reaches the egress listener calls other services as this workload`,
    );
  }
  if (config.egress && config.mesh) yield* egressDestinationIssues(config, issue);
  if (!config.mesh) {
    for (const [i, route] of config.routes.entries()) {
      if (route.mtls) yield issue(['routes', i, 'mtls'], 'applies only with mesh (the workload identity)');
    }
  }
  if (config.mesh) yield* meshListenerIssues(config, issue);
  if (!config.mesh && tls.client_certificates !== 'none' && !tls.client_ca) {
    yield issue(
      ['listeners', 'inbound', 'tls', 'client_certificates'],
      `"${tls.client_certificates}" needs listeners.inbound.tls.client_ca (the CA bundle client certificates chain to)`,
    );
  }
  if (tls.client_crl !== undefined) yield* clientCrlIssues(config, issue);
  // peers.allow admits callers by their certificate; a listener that never asks for one gets none,
  // so the list would refuse nobody (and, before it required one, let everybody in).
  if (!config.mesh && tls.client_certificates === 'none') yield* peersWithoutClientCertificates(config, issue);
  const spoolProblem = config.limits.spool_dir === undefined ? undefined : writableDirectoryProblem(config.limits.spool_dir);
  if (spoolProblem) yield issue(['limits', 'spool_dir'], spoolProblem);
  yield* tokensIssues(config, issue);
  if (config.openapi && config.routes.length > 0) {
    yield issue(
      ['routes'],
      "must be empty with openapi: the routes are the document's operations (per-operation settings go under openapi.operations)",
    );
  }
  if (!config.threats?.malware) {
    for (const [i, route] of config.routes.entries()) {
      if (route.malware_scan) yield issue(['routes', i, 'malware_scan'], 'needs threats.malware (the clamd to scan with)');
    }
  }
  yield* bucketsThatDoNotLimit(config, issue);
  yield* threatTimesThatDisable(config, issue);
  if (config.rate_limits.store === 'redis' && !config.rate_limits.redis) {
    yield issue(['rate_limits', 'redis'], 'is required with store: redis (e.g. "redis://127.0.0.1:6379")');
  }
  // 0 turns Node's own timers off (headers, request, keep-alive, handshake) while the sidecar's body
  // read would time out at once: either way not a limit. Slow clients are what these bound.
  for (const key of ['headers_timeout', 'request_timeout', 'idle_timeout', 'send_timeout', 'handshake_timeout'] as const) {
    if (config.limits[key] <= 0)
      yield issue(
        ['limits', key],
        'must be more than 0: a client with no time limit is the slow-client attack (set a long one instead, e.g. "10m")',
      );
  }
  const failures = config.limits.handshake_failures;
  if (failures.burst > 0 && failures.per <= 0)
    yield issue(['limits', 'handshake_failures', 'per'], 'must be more than 0 (or set burst: 0 to turn the limit off)');
  // 0 answered every request 431; 2 GiB or more passed here and the first h2 client then crashed
  // the process (nghttp2's header list size is 32-bit, and it is set to twice this).
  const headerBytes = config.limits.max_header_bytes;
  if (headerBytes < MIN_HEADER_BYTES || headerBytes > MAX_HEADER_BYTES)
    yield issue(['limits', 'max_header_bytes'], `must be from 1KiB to 1MiB, got ${headerBytes} bytes`);
  const { headers_timeout, request_timeout } = config.limits;
  if (headers_timeout > request_timeout) {
    yield issue(
      ['limits', 'request_timeout'],
      `must be at least limits.headers_timeout (${headers_timeout} ms): a request cannot end before its headers`,
    );
  }
}

/** Egress destinations are workloads of this mesh (net/destination-id.ts); found at load, not on the first call. */
function* egressDestinationIssues(config: SidecarConfig, issue: IssueAt): Generator<ConfigIssue> {
  const trustDomain = trustDomainOf(config.mesh?.spiffe_id ?? '');
  for (const [name, service] of Object.entries(config.egress?.services ?? {})) {
    const problem = destinationIdProblem(service.spiffe_id, trustDomain);
    if (problem)
      yield issue(
        ['egress', 'services', name, 'spiffe_id'],
        `${problem}: egress reaches workloads of this mesh only; name the destination workload's ID (spiffe://${trustDomain}/ns/…/sa/…)`,
      );
  }
}

const MIN_HEADER_BYTES = 1024;
const MAX_HEADER_BYTES = 1024 * 1024;

/** Buckets that never allow a request (a cost above their size), or allow every one (refilled every 0 ms). */
function* bucketsThatDoNotLimit(config: SidecarConfig, issue: IssueAt): Generator<ConfigIssue> {
  const buckets: [(string | number)[], RateLimitConfig | false | undefined][] = [
    [['rate_limits', 'default'], config.rate_limits.default],
    ...routeSettingsOf(config).map(({ at, settings }): [(string | number)[], RateLimitConfig | false | undefined] => [
      [...at, 'rate_limit'],
      settings.rate_limit,
    ]),
  ];
  for (const [field, bucket] of buckets) {
    if (!bucket) continue;
    // per / rate is the interval between tokens: 0 admitted everything, and RateLimit said r=Infinity.
    if (bucket.per !== undefined && bucket.per <= 0)
      yield issue([...field, 'per'], 'must be more than 0: a bucket refilled every 0 ms limits nothing (e.g. "1s")');
    const problem = costProblem(bucket);
    if (problem) yield issue([...field, 'cost'], problem);
  }
}

/** A time limit of 0 on a threat check turns the check off (or, failing closed, refuses everything). */
function* threatTimesThatDisable(config: SidecarConfig, issue: IssueAt): Generator<ConfigIssue> {
  const waf = config.threats?.waf;
  if (waf && waf.budget <= 0) {
    yield issue(
      ['threats', 'waf', 'budget'],
      `must be more than 0: every inspection would time out (${waf.on_timeout === 'allow' ? 'and pass uninspected' : 'and be refused'}); e.g. "20ms"`,
    );
  }
  const malware = config.threats?.malware;
  if (malware && malware.timeout <= 0) {
    yield issue(['threats', 'malware', 'timeout'], 'must be more than 0: every scan would time out (e.g. "30s")');
  }
}

/**
 * With mesh the inbound listener serves the workload certificate and trusts the mesh's bundle: a
 * certificate, key or client_ca set beside it was silently not used — an operator who put a
 * partner's CA in client_ca believed its callers admitted (or only they), and none were.
 */
function* meshListenerIssues(config: SidecarConfig, issue: IssueAt): Generator<ConfigIssue> {
  const tls = config.listeners.inbound.tls;
  const why: Record<string, string> = {
    cert: 'with mesh the listener serves the workload certificate the Warden CA issued (mesh.state_dir): remove it',
    key: "with mesh the workload's key is made and kept in mesh.state_dir: remove it",
    passphrase: 'with mesh there is no key file to decrypt: remove it',
    client_ca:
      "with mesh callers are verified against the mesh's trust bundle (the Warden CA's roots) and admitted by SPIFFE ID (peers.allow): remove it; a caller from outside the mesh needs a certificate from the Warden CA",
  };
  for (const field of ['cert', 'key', 'passphrase', 'client_ca'] as const) {
    if (tls[field] !== undefined) yield issue(['listeners', 'inbound', 'tls', field], `applies only without mesh: ${why[field]}`);
  }
}

/** What client_crl needs around it; the file itself is read with the other TLS files. */
function* clientCrlIssues(config: SidecarConfig, issue: IssueAt): Generator<ConfigIssue> {
  const at = ['listeners', 'inbound', 'tls', 'client_crl'];
  const tls = config.listeners.inbound.tls;
  // The mesh's listener trusts the mesh's bundle, not client_ca, and its CRL comes from the Warden CA.
  if (config.mesh)
    yield issue(
      at,
      "applies only without mesh: with mesh, revocation is the Warden CA's CRL (warden ca revoke), and client_ca is not used",
    );
  else if (!tls.client_ca) yield issue(at, 'needs listeners.inbound.tls.client_ca (the CAs whose CRLs these are)');
  else if (tls.client_certificates === 'none')
    yield issue(at, 'needs listeners.inbound.tls.client_certificates: request or require (without them no caller presents a certificate)');
}

function* peersWithoutClientCertificates(config: SidecarConfig, issue: IssueAt): Generator<ConfigIssue> {
  const lists = [
    { at: [] as (string | number)[], allow: config.peers.allow },
    ...routeSettingsOf(config).map(({ at, settings }) => ({ at, allow: settings.peers?.allow })),
  ];
  for (const { at, allow } of lists) {
    if (allow !== undefined && allow.length > 0)
      yield issue(
        [...at, 'peers', 'allow'],
        'needs listeners.inbound.tls.client_certificates: request or require (without them no caller presents a certificate)',
      );
  }
}

function loadTlsMaterial(config: SidecarConfig, issue: IssueAt, issues: ConfigIssue[]): TlsMaterial | undefined {
  const tls = config.listeners.inbound.tls;
  const at = ['listeners', 'inbound', 'tls'];
  const read = (field: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileBounded(path, MAX_SECRET_FILE_BYTES);
    } catch (err) {
      issues.push(issue([...at, field], `cannot read ${path} (${readFailure(err)})`));
      return undefined;
    }
  };
  if (config.mesh) return undefined; // the workload certificate; files set beside mesh are refused (meshListenerIssues)
  const cert = read('cert', tls.cert);
  const key = read('key', tls.key);
  const clientCa = usableClientCa(tls.client_ca, read('client_ca', tls.client_ca), (message) =>
    issues.push(issue([...at, 'client_ca'], message)),
  );
  const clientCrl = readClientCrlFile(tls.client_crl, clientCa, (message) => issues.push(issue([...at, 'client_crl'], message)));
  if (!cert || !key) return undefined;
  try {
    createSecureContext({ cert, key, passphrase: tls.passphrase, ca: clientCa });
  } catch (err) {
    const message = (err as Error).message;
    const field = /passphrase|decrypt|bad decrypt/i.test(message)
      ? 'passphrase'
      : /key values mismatch/i.test(message)
        ? 'key'
        : /ca|issuer/i.test(message) && clientCa
          ? 'client_ca'
          : /key/i.test(message)
            ? 'key'
            : 'cert';
    const hint = /mismatch/i.test(message) ? 'the key does not belong to the certificate' : message;
    issues.push(issue([...at, field], `TLS material does not load: ${hint}`));
    return undefined;
  }
  return { cert, key, passphrase: tls.passphrase, clientCa, clientCrl };
}

/**
 * client_ca when it holds CA certificates the listener can use; else refused (the file trusted no one:
 * OpenSSL skips what is not a PEM certificate, and a reload to it closed every mTLS connection).
 */
function usableClientCa(path: string | undefined, data: Buffer | undefined, refuse: (message: string) => void): Buffer | undefined {
  if (path === undefined || data === undefined) return undefined;
  const problem = caFileProblem(path, data, 'give the PEM certificates of the CAs client certificates chain to');
  if (problem === undefined) return data;
  refuse(problem);
  return undefined;
}

/**
 * Reads and verifies client_crl against client_ca (at start and at every reload: a refused file
 * keeps the running configuration, its CRLs included). Without client_ca, clientCrlIssues said so.
 */
function readClientCrlFile(
  path: string | undefined,
  clientCa: Buffer | undefined,
  refuse: (message: string) => void,
): ClientCrl | undefined {
  if (path === undefined || clientCa === undefined) return undefined;
  let data: Buffer;
  try {
    data = readFileBounded(path, MAX_CLIENT_CRL_BYTES);
  } catch (err) {
    refuse(`cannot read ${path} (${readFailure(err)})`);
    return undefined;
  }
  try {
    return readClientCrl(path, data, clientCa);
  } catch (err) {
    if (!(err instanceof ClientCrlError)) throw err;
    refuse(`${path}: ${err.message}`);
    return undefined;
  }
}
