/**
 * A Warden CA for tests: `warden ca init` material in a temp directory (made once per process),
 * the CA server in-process with its events captured, and CSRs made the way a sidecar makes them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { webcrypto } from 'node:crypto';
import { initCa, type InitializedCa } from '../../src/ca/init.js';
import { exportPrivateKeyPem } from '../../src/ca/keys.js';
import { EC_P256, x509, type CryptoKeyPair } from '../../src/ca/pki.js';
import type { CaMaterial } from '../../src/ca/layout.js';
import { startCaServer, type CaServer, type CaServerOptions } from '../../src/ca/server.js';
import { resolveCaConfig } from '../../src/config/ca-load.js';
import { createEventBus, type EventAttributes, type EventName } from '../../src/telemetry/events.js';
import { createLogger } from '../../src/telemetry/logger.js';

/** The repository root (computed here so the CA tests do not load the proxy's test support). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export type Teardown = { teardown(fn: () => unknown): void };

export interface CapturedEvent extends EventAttributes {
  name: EventName;
}

export type TestKeyType = 'p256' | 'p384' | 'ed25519' | 'rsa1024' | 'rsa2048';

type KeyAlgorithm = { name: string; namedCurve?: string; hash?: string; modulusLength?: number; publicExponent?: Uint8Array };

const ALGORITHMS: Record<TestKeyType, KeyAlgorithm> = {
  p256: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
  p384: { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' },
  ed25519: { name: 'Ed25519' },
  rsa1024: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
  rsa2048: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
};

export interface TestCsr {
  csrPem: string;
  keyPem: string;
  keys: CryptoKeyPair;
}

export interface CsrOptions {
  spiffeId?: string;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  key?: TestKeyType;
  /** Reuse a key pair (a renewal that forgot to make a new key). */
  keys?: CryptoKeyPair;
}

export async function makeCsr(options: CsrOptions = {}): Promise<TestCsr> {
  const algorithm = ALGORITHMS[options.key ?? 'p256'];
  const keys =
    options.keys ??
    ((await webcrypto.subtle.generateKey(algorithm as Parameters<typeof webcrypto.subtle.generateKey>[0], true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair);
  const names: x509.JsonGeneralNames = [
    ...(options.spiffeId ? [{ type: 'url' as const, value: options.spiffeId }] : []),
    ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=workload',
    keys,
    signingAlgorithm: algorithm as x509.Pkcs10CertificateRequestCreateParams['signingAlgorithm'],
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return { csrPem: csr.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey), keys };
}

export const TRUST_DOMAIN = 'example.test';
export const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;

/** CA material made by initCa, shared by the tests of one process (key generation is the slow part). */
let material: Promise<InitializedCa> | undefined;
export function testCaMaterial(): Promise<InitializedCa> {
  material ??= initCa({ trustDomain: TRUST_DOMAIN, dir: join(mkdtempSync(join(tmpdir(), 'warden-ca-')), 'ca') });
  return material;
}

export interface CaUnderTest {
  ca: CaServer;
  dir: string;
  events: CapturedEvent[];
  eventsNamed: (name: EventName) => CapturedEvent[];
  /** The CA's SQLite file. */
  dbPath: string;
  /** The CA's log lines (level debug and up) when started with `{ logs: true }`; empty otherwise. */
  logs: Record<string, unknown>[];
}

export interface CaTestOptions {
  limits?: CaServerOptions['limits'];
  /** Capture the CA's log lines in `logs`. */
  logs?: boolean;
  /** A root of its own (another CA altogether), not the material the tests share. */
  ownRoot?: boolean;
}

/** A CA server on a free loopback port with a database of its own; closed by the test's teardown. */
export async function startCaUnderTest(
  t: Teardown,
  extra: Record<string, unknown> = {},
  options: CaTestOptions = {},
): Promise<CaUnderTest> {
  const { dir } = options.ownRoot
    ? await initCa({ trustDomain: TRUST_DOMAIN, dir: join(mkdtempSync(join(tmpdir(), 'warden-ca-')), 'ca') })
    : await testCaMaterial();
  const events: CapturedEvent[] = [];
  const bus = createEventBus([(name, _severity, attributes) => events.push({ name, ...attributes })]);
  const dbPath = join(mkdtempSync(join(tmpdir(), 'warden-ca-db-')), 'ca.db');
  const logs: Record<string, unknown>[] = [];
  const logger = options.logs
    ? createLogger({
        level: 'debug',
        destination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
      })
    : createLogger({ level: 'silent' });
  const config = resolveCaConfig({
    trust_domain: TRUST_DOMAIN,
    dir,
    listen: { host: '127.0.0.1', port: 0 },
    database: { path: dbPath },
    log: { level: 'silent' },
    ...extra,
  });
  const ca = await startCaServer({
    config,
    events: bus,
    logger,
    // `warden ca serve` refuses a missing database (a lost one): a test's own database is made here,
    // and one passed in `extra` (a CA restarted on the database of another) is reused.
    createDatabase: !existsSync(config.database.path),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  t.teardown(() => ca.close());
  return { ca, dir, events, eventsNamed: (name) => events.filter((e) => e.name === name), dbPath, logs };
}

/**
 * A sidecar configuration's `mesh` section enrolling at `ca` as `spiffeId` (DNS name localhost, a
 * bootstrap token for it, a fresh state directory); `extra` overrides or adds keys of `mesh`.
 */
export function meshSection<Extra extends Record<string, unknown>>(
  ca: Pick<CaServer, 'url' | 'fingerprint' | 'createToken'>,
  spiffeId: string,
  extra: Extra = {} as Extra,
) {
  return {
    mesh: {
      spiffe_id: spiffeId,
      dns_names: ['localhost'],
      ca: { url: ca.url, fingerprint: ca.fingerprint, timeout: '2s' },
      bootstrap_token: ca.createToken({ spiffe_id: spiffeId, dns_names: ['localhost'] }).token,
      state_dir: mkdtempSync(join(tmpdir(), 'warden-state-')),
      refresh: { bundle: '1s', crl: '500ms' },
      ...extra,
    },
  };
}

/**
 * A CRL signed by `ca`'s intermediate with @peculiar/x509's generator (the reference the sidecar's
 * reader is compared with): an hour's nextUpdate unless `options` says otherwise.
 */
export async function libraryCrl(ca: CaMaterial, options: Partial<x509.X509CrlCreateParams> = {}): Promise<Buffer> {
  const thisUpdate = options.thisUpdate ?? new Date();
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.intermediate.subjectName,
    signingAlgorithm: EC_P256,
    signingKey: ca.intermediateKey,
    thisUpdate,
    nextUpdate: new Date(thisUpdate.getTime() + 3_600_000),
    entries: [],
    ...options,
  });
  return Buffer.from(crl.rawData);
}

/** The CRL number extension (RFC 5280 §5.2.3) for a number below 128. */
export const crlNumberExtension = (n: number) => new x509.Extension('2.5.29.20', false, new Uint8Array([0x02, 0x01, n]));

/** A free loopback TCP port (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * `warden ca serve -c DIR/ca.yaml ARGS…` as a process (the CA made by `warden ca init` in `dir`), moved
 * to a free port, once it says it listens (at most 10 s: check `output()`); killed by the test's
 * teardown. `output()` is what it has printed so far.
 */
export async function serveCaProcessIn(
  t: Teardown,
  dir: string,
  args: readonly string[] = [],
): Promise<{ port: number; config: string; child: ChildProcess; output: () => string }> {
  const port = await freePort();
  const config = join(dir, 'ca.yaml');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/port: \d+/, `port: ${port}`));
  const child = spawn(process.execPath, [join(repoRoot, 'bin/warden.js'), 'ca', 'serve', '-c', config, ...args]);
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 200 && !out.includes('warden CA listening'); i++) await new Promise((r) => setTimeout(r, 50));
  return { port, config, child, output: () => out };
}

/** A JSON POST to the CA (`connect`: its root, and a client certificate for renew and admin calls): the status and the parsed body. */
export async function postToCa<Body = Record<string, unknown>>(
  url: string,
  body: unknown,
  connect: { ca: string; cert?: string; key?: string },
): Promise<{ status: number; body: Body }> {
  const dispatcher = new Agent({ connect, headersTimeout: 5_000 });
  try {
    const res = await request(url, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.statusCode, body: (await res.body.json()) as Body };
  } finally {
    await dispatcher.close();
  }
}

/** A CA whose port and database survive a restart (outage tests); closed by the test's teardown. */
export async function startRestartableCa(t: Teardown, extra: Record<string, unknown> = {}) {
  const { dir } = await testCaMaterial();
  const database = { path: join(mkdtempSync(join(tmpdir(), 'warden-ca-db-')), 'ca.db') };
  const config = (port: number) =>
    resolveCaConfig({ trust_domain: TRUST_DOMAIN, dir, listen: { host: '127.0.0.1', port }, database, log: { level: 'silent' }, ...extra });
  const handle = { server: await startCaServer({ config: config(0), createDatabase: true }) };
  const port = handle.server.port;
  t.teardown(() => handle.server.close());
  return {
    get server(): CaServer {
      return handle.server;
    },
    async restart() {
      handle.server = await startCaServer({ config: config(port) });
    },
  };
}
