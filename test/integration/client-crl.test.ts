/**
 * `listeners.inbound.tls.client_crl` without mesh: CRLs of the operator's own CAs (made with the
 * openssl CLI), checked per request by issuer and serial. A revoked certificate is refused on every
 * route and never reaches the backend; a reload that adds a revocation reaches connections already
 * open (HTTP/1.1 keep-alive, h2); a CRL no CA of client_ca signed is refused at load and at reload;
 * one past its nextUpdate stays in force and is reported. A root's CRL that revokes an intermediate
 * refuses the callers under it, whether the intermediate is in client_ca or sent by the client.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect as h2Connect, type ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import t from 'tap';
import { request } from 'undici';
import { loadSidecarConfig } from '../../src/config/load.js';
import { startTestBackend, type TestBackend } from '../support/backend.js';
import { curl } from '../support/clients.js';
import { issueClient, makeCa, makeCrl, type ClientCert } from '../support/openssl-pki.js';
import { readyzOf, repoRoot, startTestSidecar, testConfigYaml, type Teardown, type TestSidecar } from '../support/sidecar.js';

/**
 * Two CAs in client_ca, an RSA one (A) and an ECDSA one (B); A issued alice (serial 1001) and carol
 * (1002), B issued bob with alice's serial, 1001.
 */
const pki = (() => {
  const caA = makeCa('/CN=Clients CA A/O=Example', 'rsa');
  const caB = makeCa('/CN=Clients CA B/O=Example', 'ec');
  const dir = mkdtempSync(join(tmpdir(), 'warden-client-crl-'));
  const clientCa = join(dir, 'client-ca.pem');
  writeFileSync(clientCa, caA.certPem + caB.certPem);
  return {
    caA,
    caB,
    dir,
    clientCa,
    alice: issueClient(caA, 'alice', '1001'),
    carol: issueClient(caA, 'carol', '1002'),
    bob: issueClient(caB, 'bob', '1001'),
  };
})();

/** A CRL file in its own folder. */
function crlFile(content: Buffer): string {
  const file = join(mkdtempSync(join(tmpdir(), 'warden-crl-')), 'clients.crl');
  writeFileSync(file, content);
  return file;
}

const tlsWith = (crl: string, mode = 'require', clientCa = pki.clientCa) => ({
  listeners: { inbound: { tls: { client_certificates: mode, client_ca: clientCa, client_crl: crl } } },
});

/**
 * A root (R) and two intermediates it issued, I (serial 5000) and J (5001); I issued dave (1001), J
 * issued erin (1001). client_ca either holds all three, or the root only (clients then send their
 * intermediate: `chained`).
 */
const tiers = (() => {
  const root = makeCa('/CN=Tier Root/O=Example', 'ec');
  const i = makeCa('/CN=Tier Intermediate I/O=Example', 'ec', { ca: root, serial: '5000' });
  const j = makeCa('/CN=Tier Intermediate J/O=Example', 'rsa', { ca: root, serial: '5001' });
  const dir = mkdtempSync(join(tmpdir(), 'warden-client-crl-tiers-'));
  const allCas = join(dir, 'all-cas.pem');
  writeFileSync(allCas, root.certPem + i.certPem + j.certPem);
  const rootOnly = join(dir, 'root-only.pem');
  writeFileSync(rootOnly, root.certPem);
  /** `cert` with its issuing intermediate after it, as a client sends its chain. */
  const chained = (cert: ClientCert, ca: { certPem: string }): ClientCert => {
    const certFile = join(dir, `chain-${cert.serial}-${ca === i ? 'i' : 'j'}.pem`);
    writeFileSync(certFile, cert.certPem + ca.certPem);
    return { ...cert, certFile, certPem: cert.certPem + ca.certPem };
  };
  const dave = issueClient(i, 'dave', '1001');
  const erin = issueClient(j, 'erin', '1001');
  return { root, i, j, allCas, rootOnly, dave, erin, daveChain: chained(dave, i), erinChain: chained(erin, j) };
})();

/** curl with a client certificate: status and the problem's code. */
async function as(s: TestSidecar, who: ClientCert | undefined, path = '/echo', http = '--http2') {
  const cert = who ? ['--cert', who.certFile, '--key', who.keyFile] : [];
  const r = await curl([http, '--cacert', caFile(s), ...cert, `${s.url}${path}`]);
  const code = r.status >= 400 ? ((JSON.parse(r.body) as { code?: string }).code ?? '') : '';
  return { status: r.status, code, body: r.body };
}

/** The sidecar's own (test) certificate, for curl to trust. */
function caFile(s: TestSidecar): string {
  const file = join(pki.dir, 'server-ca.pem');
  writeFileSync(file, s.ca);
  return file;
}

/** An HTTP/1.1 keep-alive connection with `who`'s certificate: `get` sends one request on it and reads its answer. */
function keepAlive(t: Teardown, s: TestSidecar, who: ClientCert, session?: Buffer) {
  const socket: TLSSocket = tlsConnect({
    ...(session ? { session } : {}),
    host: '127.0.0.1',
    port: s.port,
    servername: 'localhost',
    ca: s.ca,
    cert: who.certPem,
    key: who.keyPem,
    ALPNProtocols: ['http/1.1'],
  });
  socket.on('error', () => undefined);
  t.teardown(() => socket.destroy());
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  const ready = new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
  return {
    socket,
    async get(path = '/echo'): Promise<{ status: number; code: string }> {
      await ready;
      received = '';
      socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      for (let i = 0; i < 200; i++) {
        const head = received.indexOf('\r\n\r\n');
        const length = Number(/content-length: (\d+)/i.exec(received)?.[1] ?? NaN);
        if (head >= 0 && received.length >= head + 4 + length) {
          const body = received.slice(head + 4, head + 4 + length);
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0);
          return { status, code: status >= 400 ? String((JSON.parse(body) as { code?: string }).code) : '' };
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      return { status: 0, code: 'NO_ANSWER' };
    },
  };
}

/** A request on an open h2 session: status and the problem's code. */
function h2Get(session: ClientHttp2Session, path = '/echo'): Promise<{ status: number; code: string }> {
  return new Promise((resolve) => {
    const stream = session.request({ ':path': path });
    let status = 0;
    let body = '';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('error', () => undefined);
    stream.on('close', () => resolve({ status, code: status >= 400 ? String((JSON.parse(body) as { code?: string }).code) : '' }));
    stream.end();
  });
}

const seen = (backend: TestBackend) => backend.requests.length;

t.test('a revoked certificate is refused (401 ERR_PEER_REVOKED) on every route; the same serial of another CA is not', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const crl = crlFile(makeCrl(pki.caA, ['1001']));
  const s = await startTestSidecar(t, backend.url, tlsWith(crl));
  const before = seen(backend);
  const alice = await as(s, pki.alice);
  t.same([alice.status, alice.code], [401, 'ERR_PEER_REVOKED'], 'alice (CA A, serial 1001, revoked): refused over h2 (curl)');
  t.match(JSON.parse(alice.body), { code: 'ERR_PEER_REVOKED' }, 'problem+json');
  const aliceH1 = await as(s, pki.alice, '/echo', '--http1.1');
  t.same([aliceH1.status, aliceH1.code], [401, 'ERR_PEER_REVOKED'], 'and over HTTP/1.1');
  t.equal(seen(backend), before, 'the backend never saw alice');
  t.equal((await as(s, pki.carol)).status, 200, 'carol (CA A, serial 1002) is served');
  t.equal((await as(s, pki.bob)).status, 200, 'bob (CA B, the same serial 1001) is served: revocation is per issuer');
  const event = s.events.find((e) => e.name === 'warden.tls.peer_revoked');
  t.match(event, { 'warden.rule': 'tls.client_crl', 'warden.code': 'ERR_PEER_REVOKED' }, 'the security event names the rule');

  // Under `request`, a caller without a certificate is still served, and alice is still refused.
  const backend2 = await startTestBackend();
  t.teardown(() => backend2.close());
  const r = await startTestSidecar(t, backend2.url, tlsWith(crl, 'request'));
  t.same((await as(r, pki.alice)).code, 'ERR_PEER_REVOKED', 'request: a presented revoked certificate is refused');
  t.equal((await as(r, undefined)).status, 200, 'request: no certificate, served');
  t.equal(
    backend2.requests.filter((q) => q.headers['x-forwarded-client-cert'] !== undefined).length,
    0,
    'no XFCC on a route without peers',
  );
});

t.test(
  'a reload that adds a revocation refuses the next request of open connections (HTTP/1.1 and h2); a foreign CRL at reload keeps the old one',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const crl = crlFile(makeCrl(pki.caA, []));
    const s = await startTestSidecar(t, backend.url, tlsWith(crl));
    const file = s.sidecar.current.loaded.file;
    writeFileSync(file, await testConfigYaml(backend.url, tlsWith(crl)));
    const reload = () => s.sidecar.reload(() => loadSidecarConfig(file, process.env, true));

    const h1 = keepAlive(t, s, pki.carol);
    const h2 = h2Connect(s.url, { ca: s.ca, cert: pki.carol.certPem, key: pki.carol.keyPem });
    h2.on('error', () => undefined);
    t.teardown(() => h2.destroy());
    t.same(await h1.get(), { status: 200, code: '' }, 'carol, HTTP/1.1 keep-alive');
    t.same(await h2Get(h2), { status: 200, code: '' }, 'carol, h2 session');

    writeFileSync(crl, makeCrl(pki.caA, ['1002']));
    t.ok(await reload(), 'reloaded with carol revoked');
    const before = seen(backend);
    t.same(await h1.get(), { status: 401, code: 'ERR_PEER_REVOKED' }, 'the same HTTP/1.1 connection: refused');
    t.same(await h2Get(h2), { status: 401, code: 'ERR_PEER_REVOKED' }, 'the same h2 session: refused');
    t.equal(seen(backend), before, 'the backend saw neither');

    // A CRL of a CA that is not in client_ca: the reload fails, carol stays revoked, bob stays served.
    const foreign = makeCa('/CN=Clients CA A/O=Example', 'rsa'); // the same name, another key
    writeFileSync(crl, makeCrl(foreign, []));
    t.notOk(await reload(), 'the reload is refused');
    const failed = s.events.find((e) => e.name === 'warden.config.reload_failed');
    t.match(
      String(failed?.['warden.detail']),
      /listeners\.inbound\.tls\.client_crl: .*its signature does not verify with the key of "CN=Clients CA A, O=Example"/,
    );
    t.equal(String(failed?.['warden.detail']).split('\n').length, 1, 'one line');
    t.same(await h2Get(h2), { status: 401, code: 'ERR_PEER_REVOKED' }, 'the CRL in force stays: carol still refused');
    t.equal((await as(s, pki.bob)).status, 200, 'bob served');

    // A reload that removes the revocation frees the connection again (the check is per request).
    writeFileSync(crl, makeCrl(pki.caA, []));
    t.ok(await reload(), 'reloaded without revocations');
    t.same(await h2Get(h2), { status: 200, code: '' }, 'carol served again on her open session');
  },
);

t.test('config check and startup refuse a CRL no CA of client_ca signed, a damaged one, a FIFO', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const check = async (crl: string) => {
    const file = join(mkdtempSync(join(tmpdir(), 'warden-crl-check-')), 'sidecar.yaml');
    writeFileSync(file, await testConfigYaml(backend.url, tlsWith(crl)));
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), 'config', 'check', '-c', file], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, file };
  };
  const good = await check(crlFile(makeCrl(pki.caB, ['1001', '2002'])));
  t.equal(good.code, 0, good.stderr);
  t.match(good.stdout, /valid — .*, client CRL \/\S+clients\.crl \(1 CRL, 2 revoked\)\n$/, 'the file is named');

  const stranger = makeCa('/CN=Somebody Else', 'ec');
  const foreign = await check(crlFile(makeCrl(stranger, [])));
  t.equal(foreign.code, 2, 'exit status 2');
  t.match(
    foreign.stderr,
    /^\S+sidecar\.yaml:\d+ listeners\.inbound\.tls\.client_crl: \/\S+clients\.crl: the CRL: its issuer is no CA certificate of client_ca: .*\n$/,
    'one line naming file, field and fix',
  );

  const whole = makeCrl(pki.caA, ['1001'], { der: true });
  const cut = await check(crlFile(whole.subarray(0, whole.length - 10)));
  t.equal(cut.code, 2);
  t.match(cut.stderr, /listeners\.inbound\.tls\.client_crl: \S+: the CRL: unreadable CRL: .*\n$/, 'a damaged CRL');
  const der = await check(crlFile(whole));
  t.equal(der.code, 0, 'one DER CRL is accepted');

  const fifoDir = mkdtempSync(join(tmpdir(), 'warden-crl-fifo-'));
  spawnSync('mkfifo', [join(fifoDir, 'clients.crl')]);
  const fifo = await check(join(fifoDir, 'clients.crl'));
  t.equal(fifo.code, 2);
  t.match(fifo.stderr, /client_crl: cannot read \S+ \(a FIFO, not a file/);

  // `warden proxy` refuses to start on the same line.
  const proxy = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), 'proxy', '-c', foreign.file], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  t.equal(proxy.status, 2);
  t.match(proxy.stderr, /listeners\.inbound\.tls\.client_crl: .*its issuer is no CA certificate of client_ca/);
});

t.test('a CRL past its nextUpdate stays in force, with a warning, the gauge and a /readyz detail', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const crl = crlFile(makeCrl(pki.caA, ['1001'], { nextUpdate: Date.now() - 3_600_000 }));
  const s = await startTestSidecar(t, backend.url, tlsWith(crl));
  t.same((await as(s, pki.alice)).code, 'ERR_PEER_REVOKED', 'alice still refused');
  t.equal((await as(s, pki.carol)).status, 200, 'carol served');
  const stale = s.events.filter((e) => e.name === 'warden.tls.client_crl_stale');
  t.equal(stale.length, 1, 'one event');
  t.match(
    String(stale[0]?.['warden.detail']),
    /CA "CN=Clients CA A, O=Example" CRL number \d+ \(1 revoked\), next update .* is past its nextUpdate; it stays in force/,
  );
  t.ok(
    s.logs.some((l) => l.level === 'error' && /past its nextUpdate/.test(String(l.msg))),
    'an error-level log line',
  );
  const ready = await readyzOf(s.adminUrl);
  t.equal(ready.status, 200, 'still ready');
  t.match(JSON.parse(ready.body), {
    checks: [{}, {}, { name: 'client_crl', ok: true, detail: /past its nextUpdate by \d+ s, still in force/ }],
  });
  const metrics = await (await request(`${s.adminUrl}/metrics`)).body.text();
  t.match(metrics, /^warden_crl_in_force(\{[^}]*\})? 1$/m);
  const past = Number(/^warden_crl_stale_seconds(?:\{[^}]*\})? (\d+)$/m.exec(metrics)?.[1]);
  t.ok(past >= 3600 && past < 3700, `warden_crl_stale_seconds ${past}`);

  // config check says so too.
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), 'config', 'check', '-c', s.sidecar.current.loaded.file], {
    encoding: 'utf8',
  });
  t.equal(r.status, 0);
  t.match(r.stderr, /^warning: listeners\.inbound\.tls\.client_crl: .* is past its nextUpdate; it would stay in force/);
});

t.test('a root CRL that revokes an intermediate refuses the callers under it; a sibling intermediate is served', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const crl = crlFile(makeCrl(tiers.root, ['5000']));

  // (a) The intermediates are in client_ca: the client sends its own certificate only.
  const a = await startTestSidecar(t, backend.url, tlsWith(crl, 'require', tiers.allCas));
  const before = seen(backend);
  t.same(
    await as(a, tiers.dave).then((r) => [r.status, r.code]),
    [401, 'ERR_PEER_REVOKED'],
    'intermediates in client_ca: dave (under revoked I) refused, h2',
  );
  t.same(await as(a, tiers.dave, '/echo', '--http1.1').then((r) => [r.status, r.code]), [401, 'ERR_PEER_REVOKED'], 'and HTTP/1.1');
  t.same(await as(a, tiers.daveChain).then((r) => [r.status, r.code]), [401, 'ERR_PEER_REVOKED'], 'and when dave sends I too');
  t.equal(seen(backend), before, 'the backend never saw dave');
  t.equal((await as(a, tiers.erin)).status, 200, 'erin (under J, the same serial 1001) served');
  t.equal((await as(a, tiers.erinChain)).status, 200, 'erin sending J: served');
  t.match(
    a.events.find((e) => e.name === 'warden.tls.peer_revoked'),
    { 'warden.rule': 'tls.client_crl', 'warden.code': 'ERR_PEER_REVOKED' },
    'the security event',
  );

  // (b) Only the root is in client_ca: the client sends its intermediate.
  const b = await startTestSidecar(t, backend.url, tlsWith(crl, 'require', tiers.rootOnly));
  const beforeB = seen(backend);
  t.same(await as(b, tiers.daveChain).then((r) => [r.status, r.code]), [401, 'ERR_PEER_REVOKED'], 'root only: dave sending I refused, h2');
  t.same(await as(b, tiers.daveChain, '/echo', '--http1.1').then((r) => [r.status, r.code]), [401, 'ERR_PEER_REVOKED'], 'and HTTP/1.1');
  t.equal((await as(b, tiers.erinChain)).status, 200, 'erin sending J: served');
  t.equal(seen(backend), beforeB + 1, 'the backend saw erin only');

  // A resumed session has only the leaf: the intermediate its client sent before is found again.
  const first = keepAlive(t, b, tiers.daveChain);
  t.same(await first.get(), { status: 401, code: 'ERR_PEER_REVOKED' }, 'a full handshake: refused');
  const session = first.socket.getSession();
  t.ok(session, 'a session to resume');
  const again = keepAlive(t, b, tiers.daveChain, session);
  t.same(await again.get(), { status: 401, code: 'ERR_PEER_REVOKED' }, 'the resumed session: refused too');
  t.ok(again.socket.isSessionReused(), 'the session was resumed');
  const erin = keepAlive(t, b, tiers.erinChain);
  t.same(await erin.get(), { status: 200, code: '' }, 'erin, full handshake');
  const erinAgain = keepAlive(t, b, tiers.erinChain, erin.socket.getSession());
  t.same(await erinAgain.get(), { status: 200, code: '' }, 'erin, resumed: served');
  t.ok(erinAgain.socket.isSessionReused(), 'resumed');
});

t.test('a reload that revokes an intermediate refuses the next request of open connections under it', async (t) => {
  for (const [name, clientCa, dave, erin] of [
    ['root only in client_ca, clients send their intermediate', tiers.rootOnly, tiers.daveChain, tiers.erinChain],
    ['intermediates in client_ca', tiers.allCas, tiers.dave, tiers.erin],
  ] as const) {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const crl = crlFile(makeCrl(tiers.root, []));
    const s = await startTestSidecar(t, backend.url, tlsWith(crl, 'require', clientCa));
    const file = s.sidecar.current.loaded.file;
    writeFileSync(file, await testConfigYaml(backend.url, tlsWith(crl, 'require', clientCa)));
    const reload = () => s.sidecar.reload(() => loadSidecarConfig(file, process.env, true));

    const h1 = keepAlive(t, s, dave);
    const h2 = h2Connect(s.url, { ca: s.ca, cert: dave.certPem, key: dave.keyPem });
    h2.on('error', () => undefined);
    t.teardown(() => h2.destroy());
    const sibling = keepAlive(t, s, erin);
    t.same(await h1.get(), { status: 200, code: '' }, `${name}: dave, HTTP/1.1 keep-alive`);
    t.same(await h2Get(h2), { status: 200, code: '' }, `${name}: dave, h2 session`);
    t.same(await sibling.get(), { status: 200, code: '' }, `${name}: erin, HTTP/1.1 keep-alive`);

    writeFileSync(crl, makeCrl(tiers.root, ['5000']));
    t.ok(await reload(), 'reloaded with intermediate I revoked');
    t.same(await h1.get(), { status: 401, code: 'ERR_PEER_REVOKED' }, `${name}: dave's open HTTP/1.1 connection refused`);
    t.same(await h2Get(h2), { status: 401, code: 'ERR_PEER_REVOKED' }, `${name}: dave's open h2 session refused`);
    t.same(await sibling.get(), { status: 200, code: '' }, `${name}: erin's open connection still served`);
  }
});
