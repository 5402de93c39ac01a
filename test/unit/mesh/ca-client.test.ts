/**
 * The CA client against the real CA (trust by fingerprint or bundle, refusals with their code),
 * against a scripted HTTPS server on a CA server certificate (a CA that stalls or replays an old
 * CRL), and against a workload posing as the CA with the CA's DNS name (refused).
 */
import t from 'tap';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, webcrypto, X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CaApiError } from '../../../src/ca/admin-client.js';
import { createIssuer } from '../../../src/ca/issuer.js';
import { exportPrivateKeyPem, generateKeyPair } from '../../../src/ca/keys.js';
import { loadCaMaterial, serverSpiffeId } from '../../../src/ca/layout.js';
import { EC_P256, x509 } from '../../../src/ca/pki.js';
import {
  bundleNamesConfiguredRoot,
  CaUnavailableError,
  configuredRootsIn,
  createCaClient,
  describeCaError,
  resolveCaTrust,
} from '../../../src/mesh/ca-client.js';
import { createKeyAndCsr } from '../../../src/mesh/csr.js';
import { createTrustRefresher } from '../../../src/mesh/trust-refresh.js';
import { ORDERS, startCaUnderTest, testCaMaterial, TRUST_DOMAIN, type Teardown } from '../../support/ca-harness.js';
import { enrollWorkload } from '../../support/workload.js';

const ca = (url: string, extra: { fingerprint?: string | string[]; bundle?: string; timeout?: number } = {}) => ({
  url,
  timeout: 2000,
  ...extra,
});

async function listen<S extends Server | TcpServer>(t: Teardown, server: S): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as AddressInfo).port;
}

/** A server certificate for `localhost` as the test CA makes its own (SPIFFE ID …/warden/ca). */
async function caServerCertificate(spiffeId = serverSpiffeId(TRUST_DOMAIN)): Promise<{ keyPem: string; certPem: string }> {
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const issuer = createIssuer({ ...material, trustDomain: TRUST_DOMAIN, lifetimeMs: 3_600_000, backdateMs: 60_000 });
  const keys = await generateKeyPair();
  const issued = await issuer.issue({ publicKey: keys.publicKey, spiffeId, dnsNames: ['localhost'], use: 'server' });
  return { keyPem: await exportPrivateKeyPem(keys.privateKey), certPem: issued.pem + material.intermediatePem };
}

/**
 * An HTTPS server for `localhost` answering with `handler`: on a CA server certificate of the test
 * CA, or on `as` (a workload's key and chain, posing as the CA).
 */
async function scriptedCa(
  t: Teardown,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  as?: { keyPem: string; certPem: string },
) {
  const { ca: real } = await startCaUnderTest(t);
  const w = as ?? (await caServerCertificate());
  const server = createHttpsServer({ key: w.keyPem, cert: w.certPem }, handler);
  const sockets = new Set<{ destroy(): unknown }>();
  server.on('connection', (s) => (sockets.add(s), s.once('close', () => sockets.delete(s))));
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  const port = await listen(t, server);
  return { url: `https://localhost:${port}`, rootPem: real.rootPem, intermediatePem: real.intermediatePem };
}

t.test('a root rotation: a list of fingerprints pins each root the CA offers; a persisted bundle of either is the same CA', async (t) => {
  const { ca: old } = await startCaUnderTest(t);
  const { ca: next } = await startCaUnderTest(t, {}, { ownRoot: true });
  const both = [old.fingerprint, next.fingerprint];
  // The new CA, its certificate chained to the new root: a sidecar pinned to the old root alone could
  // not start (UNABLE_TO_GET_ISSUER_CERT_LOCALLY), one pinned to both can.
  await t.rejects(resolveCaTrust(ca(next.url, { fingerprint: old.fingerprint }), undefined), { code: 'ERR_CA_UNTRUSTED' });
  t.equal(
    (await resolveCaTrust(ca(next.url, { fingerprint: both }), undefined)).trim(),
    next.rootPem.trim(),
    'pinned to both: the new root',
  );
  t.equal((await resolveCaTrust(ca(old.url, { fingerprint: both }), undefined)).trim(), old.rootPem.trim(), 'and the old CA too');
  // After the rotation the persisted bundle holds the new root only: with both pinned it is this CA's.
  t.ok(bundleNamesConfiguredRoot(ca(next.url, { fingerprint: both }), next.rootPem), 'the new root alone: named');
  t.notOk(bundleNamesConfiguredRoot(ca(next.url, { fingerprint: old.fingerprint }), next.rootPem), 'pinned to the old alone: another CA');
});

t.test('first contact: a pinned fingerprint selects the matching root; a wrong one is refused', async (t) => {
  const { ca: real } = await startCaUnderTest(t);
  t.equal((await resolveCaTrust(ca(real.url, { fingerprint: real.fingerprint }), undefined)).trim(), real.rootPem.trim());
  const upper = `sha256:${real.fingerprint
    .slice(7)
    .toUpperCase()
    .replace(/(..)(?!$)/g, '$1:')}`;
  t.ok(await resolveCaTrust(ca(real.url, { fingerprint: upper }), undefined), 'colon-separated, upper-case hex is the same fingerprint');
  await t.rejects(resolveCaTrust(ca(real.url, { fingerprint: `sha256:${'ab'.repeat(32)}` }), undefined), {
    name: 'CaUnavailableError',
    code: 'ERR_CA_UNTRUSTED',
    message: /offers no root with fingerprint/,
  });
  const file = join(mkdtempSync(join(tmpdir(), 'warden-bundle-')), 'ca.pem');
  writeFileSync(file, real.rootPem);
  t.equal(await resolveCaTrust(ca(real.url, { bundle: file }), undefined), real.rootPem, 'or the bundle file');
  t.equal(
    await resolveCaTrust(ca(real.url, { bundle: file }), 'PERSISTED'),
    real.rootPem,
    'a saved bundle without a configured root is not used',
  );
});

t.test('a saved bundle: only the roots mesh.ca names are kept, by fingerprint or bundle file', async (t) => {
  const { ca: real } = await startCaUnderTest(t);
  const { ca: other } = await startCaUnderTest(t, {}, { ownRoot: true });
  const saved = real.rootPem + other.rootPem;
  const file = join(mkdtempSync(join(tmpdir(), 'warden-bundle-')), 'ca.pem');
  writeFileSync(file, real.rootPem);
  for (const [how, config] of [
    ['fingerprint', ca(real.url, { fingerprint: real.fingerprint })],
    ['bundle file', ca(real.url, { bundle: file })],
  ] as const) {
    const { kept, dropped } = configuredRootsIn(config, saved);
    t.equal(kept.trim(), real.rootPem.trim(), `${how}: the configured root kept`);
    t.same(dropped, [other.fingerprint], `${how}: the other root dropped, by its fingerprint`);
    t.equal((await resolveCaTrust(config, saved)).trim(), real.rootPem.trim(), `${how}: the CA client trusts the kept root alone`);
  }
  const both = ca(real.url, { fingerprint: [real.fingerprint, other.fingerprint] });
  t.same(configuredRootsIn(both, saved), { kept: saved, dropped: [] }, 'both pinned (a root rotation): both kept');
  t.same(configuredRootsIn(ca(real.url, { fingerprint: other.fingerprint }), real.rootPem), { kept: '', dropped: [real.fingerprint] });
});

t.test('refusals carry the CA code; an outage, a stranger and a slow CA have theirs', async (t) => {
  const { ca: real } = await startCaUnderTest(t);
  const client = createCaClient(ca(real.url), real.rootPem);
  t.teardown(() => client.close());
  const { csrPem } = await createKeyAndCsr(ORDERS);
  const refused = await client.enroll('not-a-token', csrPem).catch((err: unknown) => err);
  t.ok(refused instanceof CaApiError);
  t.match(refused, { status: 401, code: /^ERR_CA_TOKEN_/ });
  t.match(describeCaError(refused), /^ERR_CA_TOKEN_\w+ \(HTTP 401\)$/);
  t.match(await client.bundle(), /BEGIN CERTIFICATE/, 'verified calls work');
  t.ok((await client.crl()).length > 0);

  // A stranger: a certificate from a CA we do not trust.
  const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
  const other = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=other', keys, signingAlgorithm: EC_P256 });
  const stranger = createCaClient(ca(real.url), other.toString('pem'));
  t.teardown(() => stranger.close());
  t.match(await stranger.bundle().catch((e: unknown) => e), { name: 'CaUnavailableError', code: 'ERR_CA_UNTRUSTED' });

  const refusedPort = await new Promise<number>((resolve) => {
    const s = createTcpServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const gone = createCaClient(ca(`https://127.0.0.1:${refusedPort}`), real.rootPem);
  t.teardown(() => gone.close());
  const outage = await gone.crl().catch((e: unknown) => e);
  t.ok(outage instanceof CaUnavailableError);
  t.match(outage, { code: 'ERR_CA_UNAVAILABLE' });
  t.equal(describeCaError(outage), 'ERR_CA_UNAVAILABLE (ECONNREFUSED)');
});

t.test('mesh.ca.timeout bounds the whole call: a silent TLS handshake, a dribbling body', async (t) => {
  const silent = createTcpServer(() => {}); // accepts, never answers the ClientHello
  const silentPort = await listen(t, silent);
  silent.on('connection', (s) => t.teardown(() => s.destroy()));
  const { rootPem } = await testCaMaterial();
  const a = createCaClient(ca(`https://127.0.0.1:${silentPort}`, { timeout: 300 }), rootPem);
  t.teardown(() => a.close());
  let started = Date.now();
  t.match(await a.bundle().catch((e: unknown) => e), { code: 'ERR_CA_TIMEOUT' });
  t.ok(Date.now() - started < 1500, `handshake gave up after ${Date.now() - started} ms`);

  const fake = await scriptedCa(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/pem-certificate-chain' });
    const tick = setInterval(() => res.write('x'), 50); // never idle long enough for an idle timeout
    res.once('close', () => clearInterval(tick));
  });
  const b = createCaClient(ca(fake.url, { timeout: 400 }), fake.rootPem);
  t.teardown(() => b.close());
  started = Date.now();
  t.match(await b.bundle().catch((e: unknown) => e), { code: 'ERR_CA_TIMEOUT' });
  t.ok(Date.now() - started < 1500, `body gave up after ${Date.now() - started} ms`);
});

/** An empty CRL of the intermediate's, valid for an hour from `time` (signed by `key`: a forger's to forge one). */
async function emptyCrl(
  material: Awaited<ReturnType<typeof loadCaMaterial>>,
  time: number,
  key = material.intermediateKey,
): Promise<Buffer> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: material.intermediate.subjectName,
    thisUpdate: new Date(time),
    nextUpdate: new Date(time + 3600_000),
    signingAlgorithm: EC_P256,
    signingKey: key,
    entries: [],
  });
  return Buffer.from(crl.rawData);
}

/**
 * A trust refresher fetching CRLs from a scripted CA: what it applied, and its failures as "what:
 * message". `beforeApply` runs as each CRL is applied (it may throw, as a failed apply does).
 */
function crlRefresher(
  t: { teardown(fn: () => unknown): void; fail(message: string): void },
  fake: { url: string; rootPem: string },
  material: { intermediatePem: string; bundlePem: string },
  beforeApply: () => void = () => undefined,
) {
  const client = createCaClient(ca(fake.url), fake.rootPem);
  t.teardown(() => client.close());
  const applied: Buffer[] = [];
  const failures: string[] = [];
  const refresher = createTrustRefresher({
    client,
    intervals: { bundle: 60_000, crl: 60_000 },
    issuers: () => [material.intermediatePem],
    currentBundle: () => material.bundlePem,
    onBundle: () => t.fail('the bundle did not change'),
    onCrl: (crl) => {
      beforeApply();
      applied.push(crl.der);
    },
    onFailure: (what, err) => failures.push(`${what}: ${(err as Error).message}`),
  });
  t.teardown(() => refresher.stop());
  return { client, refresher, applied, failures };
}

t.test('trust refresh: a verified CRL moves forward only; a replayed older one or a forged one is refused', async (t) => {
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const crlAt = (time: number, key = material.intermediateKey) => emptyCrl(material, time, key);
  const now = Date.now();
  const forger = await webcrypto.subtle.generateKey(EC_P256, false, ['sign', 'verify']);
  const served = [await crlAt(now - 60_000), await crlAt(now), await crlAt(now - 30_000), await crlAt(now + 1000, forger.privateKey)];
  let next = 0;
  const fake = await scriptedCa(t, (req, res) => {
    if (req.url === '/v1/crl') return res.end(served[Math.min(next++, served.length - 1)]);
    res.end(material.bundlePem);
  });
  const { refresher, applied, failures } = crlRefresher(t, fake, material);
  await refresher.refreshNow(); // first CRL
  await refresher.refreshNow(); // newer
  await refresher.refreshNow(); // older: refused
  await refresher.refreshNow(); // forged: refused
  t.same(applied, served.slice(0, 2), 'the first two applied, in order');
  t.same(failures, [
    'crl: the CRL is older than the one in force',
    'crl: the CRL is not signed by an issuing CA that chains to the trust bundle',
  ]);
});

t.test('CRL refresh: If-None-Match with the ETag of the CRL in force; a 304 keeps it', async (t) => {
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const signed = (time: number) => emptyCrl(material, time);
  const now = Date.now();
  // CRL "a" twice (the second time the client has its ETag: 304), then "b".
  const crls = [
    { der: await signed(now - 1000), etag: '"a"' },
    { der: await signed(now), etag: '"b"' },
  ];
  let current = 0;
  const asked: (string | undefined)[] = [];
  const fake = await scriptedCa(t, (req, res) => {
    if (req.url !== '/v1/crl') return res.end(material.bundlePem);
    const crl = crls[current] as { der: Buffer; etag: string };
    asked.push(req.headers['if-none-match']);
    res.setHeader('etag', crl.etag);
    res.setHeader('cache-control', 'no-cache');
    if (req.headers['if-none-match'] === crl.etag) return res.writeHead(304).end();
    res.end(crl.der);
  });
  const { refresher, applied, failures, client } = crlRefresher(t, fake, material);
  await refresher.refreshNow();
  await refresher.refreshNow(); // unchanged: 304
  current = 1;
  await refresher.refreshNow(); // changed: 200
  await refresher.refreshNow(); // 304 again
  t.same(asked, [undefined, '"a"', '"a"', '"b"'], 'the first fetch is unconditional, then the ETag in force');
  t.same(applied, [crls[0]?.der, crls[1]?.der], 'each CRL applied once; a 304 applies nothing');
  t.same(failures, [], 'a 304 is no failure');
  t.same(await client.crlSince('"b"'), { changed: false });
});

t.test('a CRL that onCrl could not apply is fetched whole again, not 304ed for an ETag never in force', async (t) => {
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const der = await emptyCrl(material, Date.now());
  const asked: (string | undefined)[] = [];
  const fake = await scriptedCa(t, (req, res) => {
    if (req.url !== '/v1/crl') return res.end(material.bundlePem);
    asked.push(req.headers['if-none-match']);
    res.setHeader('etag', '"a"');
    if (req.headers['if-none-match'] === '"a"') return res.writeHead(304).end();
    res.end(der);
  });
  let calls = 0;
  const { refresher, applied, failures } = crlRefresher(t, fake, material, () => {
    if (calls++ === 0) throw new Error('ENOSPC: no space left on device');
  });
  await refresher.refreshNow(); // onCrl fails
  await refresher.refreshNow(); // fetched whole again, applied
  t.same(asked, [undefined, undefined], 'no If-None-Match after the failed apply');
  t.same(applied, [der], 'applied on the retry');
  t.same(failures, ['crl: ENOSPC: no space left on device']);
});

t.test('a CA answer past its limit is refused as it streams, first contact included; a CRL may be larger', async (t) => {
  const MiB = 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  const sent: Record<string, { bytes: number; cut: boolean }> = {};
  /** Streams `total` bytes (bounded), noting how many went out before the client dropped the connection. */
  const stream = (res: ServerResponse, key: string, total: number) => {
    const record = { bytes: 0, cut: false };
    sent[key] = record;
    res.writeHead(200);
    const pump = () => {
      while (record.bytes < total) {
        record.bytes += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.once('close', () => (record.cut = !res.writableFinished));
    pump();
  };
  let crls = 0;
  const fake = await scriptedCa(t, (req, res) => {
    // The first CRL is 2 MiB (~40 000 revocations' worth): within the CRL's larger limit.
    const size = req.url === '/v1/crl' && crls++ === 0 ? 2 * MiB : 40 * MiB;
    stream(res, `${req.url} ${size}`, size);
  });
  const { rootPem } = await testCaMaterial();
  const fingerprint = `sha256:${createHash('sha256').update(new X509Certificate(rootPem).raw).digest('hex')}`;
  const cfg = ca(fake.url, { fingerprint, timeout: 20_000 });
  t.match(await resolveCaTrust(cfg, undefined, TRUST_DOMAIN).catch((e: unknown) => e), {
    code: 'ERR_CA_ANSWER_TOO_LARGE',
    message: /\/v1\/bundle: the answer passed 1048576 bytes/,
  });
  const client = createCaClient(cfg, fake.rootPem, TRUST_DOMAIN);
  t.teardown(() => client.close());
  t.match(await client.bundle().catch((e: unknown) => e), { code: 'ERR_CA_ANSWER_TOO_LARGE' }, 'bundle');
  const small = await client.crlSince(undefined);
  t.equal(small.changed ? small.der.length : 0, 2 * MiB, 'a 2 MiB CRL is read whole');
  t.match(await client.crlSince(undefined).catch((e: unknown) => e), { code: 'ERR_CA_ANSWER_TOO_LARGE' }, 'a 40 MiB CRL');
  await new Promise((r) => setTimeout(r, 200)); // the server notices the closed connection
  t.ok(sent[`/v1/bundle ${40 * MiB}`]?.cut, 'the bundle stream was cut, not read to its end');
  t.ok(sent[`/v1/crl ${40 * MiB}`]?.cut, 'the CRL stream was cut, not read to its end');
});

t.test('a workload with the CA’s DNS name is not the CA: main, renew, fingerprint bootstrap and trust() refuse it', async (t) => {
  const { ca: real } = await startCaUnderTest(t);
  const workload = await enrollWorkload(real, `spiffe://${TRUST_DOMAIN}/ns/shop/sa/attacker`, ['localhost']);
  const served: string[] = [];
  const impostor = await scriptedCa(
    t,
    (req, res) => {
      served.push(req.url ?? '');
      res.end(real.rootPem);
    },
    workload,
  );
  const refusal = {
    name: 'CaUnavailableError',
    code: 'ERR_CA_UNTRUSTED',
    message: /not the Warden CA: .*ns\/shop\/sa\/attacker.*warden\/ca/,
  };

  const client = createCaClient(ca(impostor.url), impostor.rootPem, TRUST_DOMAIN);
  t.teardown(() => client.close());
  const refused = await client.bundle().catch((e: unknown) => e);
  t.match(refused, refusal, 'the bundle is not fetched from it');
  t.match(describeCaError(refused), /^ERR_CA_UNTRUSTED \(ERR_CA_IDENTITY_MISMATCH\)$/);
  t.match(await client.crl().catch((e: unknown) => e), refusal, 'nor the CRL');
  const { csrPem } = await createKeyAndCsr(ORDERS);
  t.match(await client.enroll('token', csrPem).catch((e: unknown) => e), refusal, 'no token is sent to it');
  t.match(await client.renew(workload, csrPem).catch((e: unknown) => e), refusal, 'nor a renewal (the mTLS agent)');
  client.trust(`${impostor.rootPem}\n`); // a new agent
  t.match(await client.bundle().catch((e: unknown) => e), refusal, 'the agent made by trust() checks it too');
  await t.rejects(
    resolveCaTrust(ca(impostor.url, { fingerprint: real.fingerprint }), undefined, TRUST_DOMAIN),
    refusal,
    'the fingerprint bootstrap confirms the pinned root with a verified call',
  );
  t.same(served, ['/v1/bundle'], 'only the unverified bootstrap fetch ever reached it');

  // Without a trust domain (the demo's client), any trust domain's /warden/ca, and nothing else.
  const anyDomain = createCaClient(ca(impostor.url), impostor.rootPem);
  t.teardown(() => anyDomain.close());
  t.match(await anyDomain.bundle().catch((e: unknown) => e), refusal);

  // The genuine CA server certificate passes the same checks; another trust domain's does not.
  const genuine = await scriptedCa(t, (_req, res) => res.end(real.rootPem));
  const good = createCaClient(ca(genuine.url), genuine.rootPem, TRUST_DOMAIN);
  t.teardown(() => good.close());
  t.equal(await good.bundle(), real.rootPem);
  t.equal(await resolveCaTrust(ca(genuine.url, { fingerprint: real.fingerprint }), undefined, TRUST_DOMAIN), `${real.rootPem.trim()}\n`);
  const elsewhere = createCaClient(ca(genuine.url), genuine.rootPem, 'other.test');
  t.teardown(() => elsewhere.close());
  t.match(await elsewhere.bundle().catch((e: unknown) => e), { code: 'ERR_CA_UNTRUSTED', message: /other\.test\/warden\/ca/ });
});

t.test('trust() refuses a bundle without certificates and keeps the roots it has', async (t) => {
  const { ca: real } = await startCaUnderTest(t);
  const client = createCaClient(ca(real.url), real.rootPem, TRUST_DOMAIN);
  t.teardown(() => client.close());
  for (const empty of ['', 'no certificate here\n']) t.throws(() => client.trust(empty), { code: 'ERR_MESH_BUNDLE_INVALID' });
  t.match(await client.bundle(), /BEGIN CERTIFICATE/, 'the CA is still trusted');
});
