/**
 * Mesh mode end to end, with a real Warden CA and real TLS: enrollment, restart on persisted
 * credentials, rotation under continuous load with zero failed requests, CA outage and recovery,
 * revocation within one CRL refresh, expired callers refused at the handshake, `mtls: optional`
 * routes, fingerprint pinning, root rotation with a renewal between its steps and CRLs signed under the new root (kept across a restart with the CA down), a workload posing as
 * the CA, a lost bundle.pem.
 */
import t from 'tap';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createHttpsServer } from 'node:https';
import { once } from 'node:events';
import { createHash, X509Certificate } from 'node:crypto';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { resolveCaConfig } from '../../src/config/ca-load.js';
import { initCa } from '../../src/ca/init.js';
import { startCaServer, type CaServer } from '../../src/ca/server.js';
import { LOCK_FILE } from '../../src/mesh/state-lock.js';
import { startTestBackend } from '../support/backend.js';
import { meshSection, startRestartableCa, TRUST_DOMAIN } from '../support/ca-harness.js';
import { curl } from '../support/clients.js';
import { startIdentity } from '../support/mesh-identity.js';
import { readyzOf, startTestSidecar } from '../support/sidecar.js';
import { enrollWorkload, type Workload } from '../support/workload.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';

const id = (path: string) => `spiffe://${TRUST_DOMAIN}/${path}`;
const ORDERS = id('ns/shop/sa/orders');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const startCa = startRestartableCa;

function meshConfig(ca: CaServer, extra: Record<string, unknown> = {}) {
  return meshSection(ca, ORDERS, extra);
}

const agentFor = (w: Workload, h2 = false) =>
  new Agent({ allowH2: h2, connections: 4, connect: { ca: w.bundlePem, cert: w.certPem, key: w.keyPem } });

async function get(url: string, dispatcher: Agent): Promise<{ status: number; body: string }> {
  const res = await request(url, { dispatcher });
  return { status: res.statusCode, body: await res.body.text() };
}

t.test('enrollment, mTLS with the workload certificate, restart on persisted credentials', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const ca = await startCa(t);
  const caller = await enrollWorkload(ca.server, id('ns/shop/sa/frontend'));
  const config = meshConfig(ca.server);
  const s = await startTestSidecar(t, backend.url, config);
  t.ok(
    s.events.some((e) => e.name === 'warden.mesh.enrolled' && e['warden.spiffe.id'] === ORDERS),
    'enrolled with the token',
  );

  const agent = agentFor(caller, true);
  t.teardown(() => agent.close());
  const r = await get(`https://localhost:${s.port}/echo`, agent);
  t.equal(r.status, 200, 'a workload of the trust domain gets through');
  t.match(JSON.parse(r.body).headers['x-forwarded-client-cert'], `By=${ORDERS};Hash=`);
  const ready = await request(`${s.adminUrl}/readyz`);
  t.match(
    await ready.body.text(),
    new RegExp(`"certificate".*${ORDERS.replace(/[/.]/g, '\\$&')} expires in`),
    '/readyz reports the identity and expiry',
  );
  const metrics = await (await request(`${s.adminUrl}/metrics`)).body.text();
  t.match(metrics, /warden_certificate_expiry_seconds\{[^}]*\} \d{4,}/);

  const serial = s.sidecar.mesh?.material().serial;
  await s.sidecar.drain();
  const again = await startTestSidecar(t, backend.url, { mesh: { ...config.mesh, bootstrap_token: undefined } });
  t.equal(again.sidecar.mesh?.material().serial, serial, 'a restart reuses the persisted certificate; no token needed');
  const agent2 = agentFor(caller);
  t.teardown(() => agent2.close());
  t.equal((await get(`https://localhost:${again.port}/echo`, agent2)).status, 200);
});

t.test('rotation under continuous load: new certificates, zero failed requests', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  // 6 s certificates renewed at half-life: two rotations take about 6 s, each with 3 s of slack
  // before the served certificate would expire (4 s left too little on a CI host running two files).
  const ca = await startCa(t, { certificates: { lifetime: '6s', backdate: '0s' } });
  // The caller's certificate comes from a long-lived CA server on the same root and intermediate.
  const caller = await enrollWorkload((await startCa(t)).server, id('ns/shop/sa/frontend'));
  const s = await startTestSidecar(t, backend.url, meshConfig(ca.server, { renew_at: 0.5, renew_jitter: 0 }));
  const first = s.sidecar.mesh?.material().serial;
  const firstKey = s.sidecar.mesh?.material().key;
  const agents = [agentFor(caller), agentFor(caller, true)];
  t.teardown(() => Promise.all(agents.map((a) => a.close())));
  let ok = 0;
  const failures: string[] = [];
  // Load until two rotations have happened, bounded by time and count.
  const until = Date.now() + 15_000;
  const rotated = () => s.events.filter((e) => e.name === 'warden.mesh.rotated').length;
  await Promise.all(
    agents.flatMap((agent) =>
      [1, 2, 3].map(async () => {
        // kept-alive connections across rotations
        for (let i = 0; i < 10_000 && Date.now() < until && rotated() < 2; i++) {
          try {
            const r = await get(`https://localhost:${s.port}/echo`, agent);
            if (r.status === 200) ok++;
            else failures.push(String(r.status));
          } catch (err) {
            failures.push((err as Error).message);
          }
        }
      }),
    ),
  );
  t.ok(rotated() >= 2, `rotated ${rotated()} times under load`);
  t.not(s.sidecar.mesh?.material().serial, first, 'serving a new certificate');
  t.not(s.sidecar.mesh?.material().key, firstKey, 'with a new key');
  t.same(failures, [], `${ok} requests, none failed`);
  const fresh = agentFor(caller);
  t.teardown(() => fresh.close());
  t.equal((await get(`https://localhost:${s.port}/echo`, fresh)).status, 200, 'new connections handshake with the new certificate');
});

t.test('CA down: keeps serving, retries with backoff, renews once the CA is back', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  // 8 s: renewal at 1.6 s falls in the outage, and the certificate outlives it with room to renew on a busy machine.
  const ca = await startCa(t, { certificates: { lifetime: '8s', backdate: '0s' } });
  const caller = await enrollWorkload((await startCa(t)).server, id('ns/shop/sa/frontend'));
  const config = meshConfig(ca.server, { renew_at: 0.2, renew_jitter: 0, max_backoff: '1s' });
  const s = await startTestSidecar(t, backend.url, config);
  const first = s.sidecar.mesh?.material().serial;
  await ca.server.close();
  await sleep(2500);
  t.ok(
    s.events.some((e) => e.name === 'warden.mesh.renewal_failed'),
    'renewal failures are events',
  );
  t.equal(s.sidecar.mesh?.material().serial, first, 'still the same certificate');
  const agent = agentFor(caller);
  t.teardown(() => agent.close());
  t.equal((await get(`https://localhost:${s.port}/echo`, agent)).status, 200, 'and still serving');
  // The sidecar keeps its state dir (one process per state dir: ERR_MESH_STATE_LOCKED), so the restart gets a copy.
  const copy = mkdtempSync(join(tmpdir(), 'warden-state-'));
  cpSync(config.mesh.state_dir, copy, { recursive: true, preserveTimestamps: true, filter: (file) => !file.endsWith(LOCK_FILE) });
  const restarted = await startIdentity(t, { ...config.mesh, state_dir: copy, bootstrap_token: undefined });
  t.equal(restarted.identity.material().serial, first, 'a restart while the CA is down starts on the persisted credentials');
  await restarted.identity.stop();
  await ca.restart();
  const deadline = Date.now() + 4000;
  while (s.sidecar.mesh?.material().serial === first && Date.now() < deadline) await sleep(100);
  t.not(s.sidecar.mesh?.material().serial, first, 'renewed once the CA answered again');
});

t.test('CA down into the last tenth of a certificate’s life: warden.mesh.cert_expiring, once', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const ca = await startCa(t, { certificates: { lifetime: '5s', backdate: '0s' } });
  // Exported to a collector too: the one catalogue name the topology test cannot wait for.
  const receiver = await startOtlpReceiver();
  t.teardown(() => receiver.close());
  const config = {
    ...meshConfig(ca.server, { renew_at: 0.5, renew_jitter: 0, max_backoff: '200ms' }),
    telemetry: { otlp: { endpoint: receiver.url, export_interval: '200ms', timeout: '1s' } },
  };
  const s = await startTestSidecar(t, backend.url, config);
  const notAfter = s.sidecar.mesh?.material().notAfter as Date;
  await ca.server.close();
  // Renewal from 2.5 s fails; retries every ≤ 200 ms reach the last 0.5 s of the certificate.
  const deadline = notAfter.getTime();
  while (!s.events.some((e) => e.name === 'warden.mesh.cert_expiring') && Date.now() < deadline) await sleep(50);
  // …and the retries that follow until the certificate ends do not warn again.
  await sleep(Math.max(0, deadline - Date.now() - 50));
  const expiring = s.events.filter((e) => e.name === 'warden.mesh.cert_expiring');
  t.equal(expiring.length, 1, 'warned once, however many renewals fail');
  const at = Date.parse(String(expiring[0]?.['warden.cert.not_after']));
  t.equal(at, notAfter.getTime(), 'naming the certificate that is running out');
  t.ok(s.events.filter((e) => e.name === 'warden.mesh.renewal_failed').length >= 2, 'after renewals that failed');
  const exported = await receiver.until(() => receiver.logs.find((l) => l.eventName === 'warden.mesh.cert_expiring'));
  t.match(
    exported,
    { severityNumber: 17, resource: { 'service.name': 'test' } },
    'and reached the collector as an OTLP log record (ERROR)',
  );
  t.equal(Date.parse(String(exported.attributes['warden.cert.not_after'])), notAfter.getTime());
});

t.test(
  'certificate expired while the CA was down: ERR_MESH_CERT_EXPIRED once, or a fresh mesh.bootstrap_token enrolls again',
  async (t) => {
    const ca = await startCa(t, { certificates: { lifetime: '3s', backdate: '0s' } });
    const settings = { renew_at: 0.5, renew_jitter: 0, max_backoff: '300ms', refresh: { bundle: '5m', crl: '5m' } };
    // Its token was used to enroll at startup: nothing left to enroll again with.
    const spent = await startIdentity(t, meshConfig(ca.server, settings).mesh);
    // Started on persisted credentials, with a fresh token configured.
    const config = meshConfig(ca.server, settings).mesh;
    await (await startIdentity(t, config)).identity.stop();
    const fresh = await startIdentity(t, {
      ...config,
      bootstrap_token: ca.server.createToken({ spiffe_id: ORDERS, dns_names: ['localhost'] }).token,
    });
    const freshSerial = fresh.identity.material().serial;
    const expiredEvents = () => spent.events.filter((e) => e['error.type'] === 'ERR_MESH_CERT_EXPIRED');

    await ca.server.close();
    const deadline = spent.identity.material().notAfter.getTime() + 5000;
    while (expiredEvents().length === 0 && Date.now() < deadline) await sleep(50);
    await ca.restart();
    const back = Date.now() + 5000;
    while (!fresh.events.some((e) => e.name === 'warden.mesh.enrolled') && Date.now() < back) await sleep(50);

    t.equal(expiredEvents().length, 1, 'one renewal_failed says the certificate expired; no retries after it');
    t.match(expiredEvents()[0], { name: 'warden.mesh.renewal_failed', 'warden.detail': /expired at .*new bootstrap token/ });
    t.notMatch(String(expiredEvents()[0]?.['warden.detail']), /serving on/, 'no "serving until" a time that has passed');
    t.match(spent.identity.status(), { expired: true, lastError: 'ERR_MESH_CERT_EXPIRED', secondsToExpiry: 0 });
    t.equal(spent.identity.status().nextRenewalAt, undefined, 'no renewal planned');
    t.match(
      spent.logs.find((l) => l['error.type'] === 'ERR_MESH_CERT_EXPIRED'),
      { level: 'error', msg: /mesh\.bootstrap_token and restart/ },
      'an error-level log line says what to do',
    );

    t.not(fresh.identity.material().serial, freshSerial, 'the fresh token enrolled again once the CA was back');
    t.ok(fresh.identity.material().notAfter.getTime() > Date.now(), 'with a certificate valid now');
    t.equal(fresh.identity.status().expired, undefined);
  },
);

t.test('revocation: refused within one CRL refresh, on open connections too', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const ca = await startCa(t);
  const caller = await enrollWorkload(ca.server, id('ns/shop/sa/frontend'));
  const s = await startTestSidecar(t, backend.url, meshConfig(ca.server));
  const agent = agentFor(caller);
  t.teardown(() => agent.close());
  t.equal((await get(`https://localhost:${s.port}/echo`, agent)).status, 200);
  await ca.server.revoke({ serial: caller.serial, reason: 'keyCompromise' });
  await sleep(1200); // refresh.crl is 500 ms
  const onOpen = await get(`https://localhost:${s.port}/echo`, agent);
  t.equal(onOpen.status, 401, 'the kept-alive connection is refused on its next request');
  t.match(JSON.parse(onOpen.body), { code: 'ERR_PEER_REVOKED' });
  const fresh = await curl([
    '--cacert',
    caller.bundleFile,
    '--cert',
    caller.certFile,
    '--key',
    caller.keyFile,
    `https://localhost:${s.port}/echo`,
  ]);
  t.not(fresh.status, 200, 'a new connection is refused');
  t.ok(
    s.events.some((e) => e.name === 'warden.tls.peer_revoked'),
    'warden.tls.peer_revoked',
  );
});

t.test('expired caller certificates fail the handshake; mtls: optional routes admit callers without one', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const shortLived = await startCa(t, { certificates: { lifetime: '1s', backdate: '0s' } });
  const expiring = await enrollWorkload(shortLived.server, id('ns/shop/sa/old'));
  const ca = await startCa(t);
  const s = await startTestSidecar(t, backend.url, meshConfig(ca.server, {}));
  await sleep(1500);
  const expired = await curl([
    '--cacert',
    expiring.bundleFile,
    '--cert',
    expiring.certFile,
    '--key',
    expiring.keyFile,
    `https://localhost:${s.port}/echo`,
  ]);
  t.not(expired.status, 200, 'expired: refused');
  t.ok(
    s.events.some((e) => e.name === 'warden.tls.handshake_failed' && e['error.type'] === 'CERT_HAS_EXPIRED'),
    'reason in the event',
  );

  const mixed = await startTestSidecar(t, backend.url, {
    ...meshConfig(ca.server),
    routes: [
      { id: 'public', path: '/public/*', mtls: 'optional' },
      { id: 'partners', path: '/partners/*', mtls: 'optional', peers: { allow: [id('ns/shop/*')] } },
      { id: 'api', path: '/*' },
    ],
  });
  const bundle = ca.server.rootPem;
  const { writeFileSync } = await import('node:fs');
  const bundleFile = join(mkdtempSync(join(tmpdir(), 'warden-b-')), 'b.pem');
  writeFileSync(bundleFile, bundle);
  t.equal(
    (await curl(['--cacert', bundleFile, `https://localhost:${mixed.port}/public/x`])).status,
    200,
    'optional route: no certificate needed',
  );
  const api = await curl(['--cacert', bundleFile, `https://localhost:${mixed.port}/api`]);
  t.equal(api.status, 401);
  t.match(JSON.parse(api.body), { code: 'ERR_PEER_CERT_REQUIRED' });
  // optional lets callers without a certificate through only where no peers.allow list names callers.
  const listed = await curl(['--cacert', bundleFile, `https://localhost:${mixed.port}/partners/x`]);
  t.equal(listed.status, 401, 'optional route with a peers.allow list: a certificate is still needed');
  t.match(JSON.parse(listed.body), { code: 'ERR_PEER_CERT_REQUIRED' });
});

t.test('fingerprint pinning: a wrong fingerprint or a missing token stops startup with one clear line', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const ca = await startCa(t);
  const wrong = meshConfig(ca.server);
  wrong.mesh.ca.fingerprint = `sha256:${'0'.repeat(64)}`;
  await t.rejects(startTestSidecar(t, backend.url, wrong), /mesh\.ca\.fingerprint: the CA at .* offers no root with fingerprint/);
  const noToken = meshConfig(ca.server, { bootstrap_token: undefined });
  await t.rejects(startTestSidecar(t, backend.url, noToken), /holds no credentials; set mesh\.bootstrap_token/);
  const used = meshConfig(ca.server);
  await startTestSidecar(t, backend.url, used);
  const reuse = { mesh: { ...used.mesh, state_dir: mkdtempSync(join(tmpdir(), 'warden-state-')) } };
  await t.rejects(startTestSidecar(t, backend.url, reuse), /enrollment .* failed: ERR_CA_TOKEN_USED/);
});

t.test('warden enroll: one-shot enrollment for an init container', async (t) => {
  const { execFile } = await import('node:child_process');
  const { writeFileSync, statSync, readdirSync } = await import('node:fs');
  const { repoRoot, testConfigYaml } = await import('../support/sidecar.js');
  const ca = await startCa(t);
  const dir = mkdtempSync(join(tmpdir(), 'warden-enroll-'));
  const enroll = async (mesh: Record<string, unknown>) => {
    const file = join(dir, `sidecar-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, await testConfigYaml('http://127.0.0.1:1', { mesh }));
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [join(repoRoot, 'bin/warden.js'), 'enroll', '-c', file],
        { timeout: 20_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin?.end();
    });
  };
  const config = meshConfig(ca.server).mesh;
  const first = await enroll(config);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, new RegExp(`^${ORDERS.replace(/[/.]/g, '\\$&')}: certificate [0-9a-f]+ valid until`));
  t.same(readdirSync(config.state_dir).sort(), ['bundle.pem', 'crl-signer.pem', 'crl.der', 'workload.pem']);
  t.equal(statSync(join(config.state_dir, 'workload.pem')).mode & 0o777, 0o600, 'the key file is 0600');
  t.equal(
    (await enroll({ ...config, bootstrap_token: undefined })).code,
    0,
    'again, without a token: the persisted credentials are confirmed',
  );
  const reused = await enroll({ ...config, state_dir: join(dir, 'elsewhere') });
  t.equal(reused.code, 1);
  t.match(reused.stderr, /ERR_CA_TOKEN_USED/, 'a used token: exit 1 naming the CA code');
  const noToken = await enroll({ ...config, state_dir: join(dir, 'empty'), bootstrap_token: undefined });
  t.equal(noToken.code, 2, 'no credentials and no token: a configuration error, exit 2');
  t.match(noToken.stderr, /^warden enroll: mesh: .* holds no credentials; set mesh\.bootstrap_token/);
  t.equal(noToken.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('egress: the backend calls another sidecar over mTLS, with the destination identity verified', async (t) => {
  const { request: httpRequest } = await import('node:http');
  const ca = await startCa(t);
  const PAYMENTS = id('ns/payments/sa/api');
  const paymentsBackend = await startTestBackend();
  t.teardown(() => paymentsBackend.close());
  const payments = await startTestSidecar(t, paymentsBackend.url, {
    mesh: {
      ...meshConfig(ca.server).mesh,
      spiffe_id: PAYMENTS,
      bootstrap_token: ca.server.createToken({ spiffe_id: PAYMENTS, dns_names: ['localhost'] }).token,
    },
    peers: { allow: [ORDERS] },
  });
  // Accepts TCP and never answers the TLS handshake.
  const tarpitSockets: Socket[] = [];
  const tarpitServer = createNetServer((s) => void tarpitSockets.push(s)).listen(0, '127.0.0.1');
  await once(tarpitServer, 'listening');
  const tarpit = tarpitServer.address() as AddressInfo;
  t.teardown(() => {
    for (const s of tarpitSockets) s.destroy();
    tarpitServer.close();
  });
  const orders = await startTestSidecar(t, 'http://127.0.0.1:1', {
    ...meshConfig(ca.server),
    egress: {
      port: 0,
      services: {
        payments: { url: `https://localhost:${payments.port}`, spiffe_id: PAYMENTS },
        impostor: { url: `https://localhost:${payments.port}`, spiffe_id: id('ns/payments/sa/other') },
        tarpit: { url: `https://127.0.0.1:${tarpit.port}`, spiffe_id: PAYMENTS },
      },
      timeouts: { connect: '500ms', headers: '1s', body: '1s' },
    },
  });
  const egress = `http://127.0.0.1:${orders.sidecar.egress?.port}`;
  const viaPath = await request(`${egress}/payments/echo?x=1`, {
    method: 'POST',
    body: 'hello',
    headers: { 'x-warden-internal-token': 'secret', 'x-app': 'kept' },
  });
  t.equal(viaPath.statusCode, 200, 'path form');
  const seen = (await viaPath.body.json()) as { url: string; bodyBytes: number; headers: Record<string, string> };
  t.equal(seen.url, '/echo?x=1');
  t.equal(seen.bodyBytes, 5, 'the body streams through');
  t.match(seen.headers['x-forwarded-client-cert'], `URI=${ORDERS}`, 'the destination saw the caller identity');
  t.equal(seen.headers['x-warden-internal-token'], undefined, 'internal headers never leave through egress');
  t.equal(seen.headers['x-app'], 'kept', 'application headers pass');

  // node:http sends a Connection header as given (undici manages its own).
  const viaProxy = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: orders.sidecar.egress?.port,
        path: 'http://payments/echo',
        method: 'GET',
        headers: { connection: 'keep-alive, x-hop', 'x-hop': '1' },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.once('error', reject);
    req.end();
  });
  t.equal(viaProxy.status, 200, 'HTTP proxy form (absolute URI)');
  t.equal(
    (JSON.parse(viaProxy.body) as { headers: Record<string, string> }).headers['x-hop'],
    undefined,
    'fields the Connection header names do not leave',
  );

  const impostor = await request(`${egress}/impostor/echo`);
  t.equal(impostor.statusCode, 502, 'a destination with another SPIFFE ID is refused');
  t.match(await impostor.body.json(), { code: 'ERR_EGRESS_PEER_MISMATCH' });
  const unknown = await request(`${egress}/nowhere/echo`);
  t.equal(unknown.statusCode, 404);
  t.match(await unknown.body.json(), { code: 'ERR_EGRESS_UNKNOWN_SERVICE' });
  // An https:// URL through HTTP_PROXY becomes a CONNECT: refused with a problem that says what to send.
  // node:http hands any answer to a CONNECT to 'connect' (whatever its status), the body as the socket's data.
  const tunnel = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: orders.sidecar.egress?.port, method: 'CONNECT', path: 'payments:443' });
    req.once('connect', (res, socket, head: Buffer) => {
      let body = head.toString();
      socket.on('data', (d: Buffer) => (body += d.toString()));
      socket.on('close', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
  t.equal(tunnel.status, 400, 'CONNECT: 400, not a silently closed connection');
  t.match(tunnel.body, /"code":"ERR_PATH_INVALID".*plain http:\/\//, 'the problem names what to send instead');

  // Only the backend may call egress: a page in a browser on this machine reaches 127.0.0.1 too.
  const raw = (path: string, headers: Record<string, string>, method = 'GET') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: orders.sidecar.egress?.port, path, method, headers, setHost: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.once('error', reject);
      req.end(method === 'POST' ? 'amount=1000' : undefined);
    });
  const port = orders.sidecar.egress?.port ?? 0;
  const refused: { what: string; status: number; code: string; path: string; method?: string; headers: Record<string, string> }[] = [
    // DNS rebinding: the page's own name now resolves to 127.0.0.1; to the browser it is same-origin.
    {
      what: 'rebinding Host',
      status: 421,
      code: 'ERR_EGRESS_HOST_REFUSED',
      path: '/payments/echo',
      headers: { host: `attacker.example:${port}` },
    },
    {
      what: 'rebinding Host, same-origin fetch',
      status: 421,
      code: 'ERR_EGRESS_HOST_REFUSED',
      path: '/payments/echo',
      headers: { host: `attacker.example:${port}`, origin: `http://attacker.example:${port}`, 'sec-fetch-site': 'same-origin' },
    },
    {
      what: 'proxy form, Host of another name',
      status: 421,
      code: 'ERR_EGRESS_HOST_REFUSED',
      path: 'http://payments/echo',
      headers: { host: 'attacker.example' },
    },
    // A cross-site form or no-cors fetch to http://127.0.0.1:<egress>/…: a loopback Host, but a browser's fields.
    {
      what: 'cross-site no-cors POST',
      status: 403,
      code: 'ERR_EGRESS_BROWSER_REFUSED',
      path: '/payments/charge',
      method: 'POST',
      headers: {
        host: `127.0.0.1:${port}`,
        origin: 'https://evil.example',
        'sec-fetch-site': 'cross-site',
        'sec-fetch-mode': 'no-cors',
        'content-type': 'text/plain',
        'content-length': '11',
      },
    },
    {
      what: 'Origin alone',
      status: 403,
      code: 'ERR_EGRESS_BROWSER_REFUSED',
      path: '/payments/echo',
      headers: { host: `localhost:${port}`, origin: 'null' },
    },
    {
      what: 'Sec-Fetch-Site alone',
      status: 403,
      code: 'ERR_EGRESS_BROWSER_REFUSED',
      path: '/payments/echo',
      headers: { host: `127.0.0.1:${port}`, 'sec-fetch-site': 'none' },
    },
    {
      what: 'Sec-Fetch-Dest alone',
      status: 403,
      code: 'ERR_EGRESS_BROWSER_REFUSED',
      path: '/payments/echo',
      headers: { host: `127.0.0.1:${port}`, 'sec-fetch-dest': 'document' },
    },
  ];
  for (const r of refused) {
    const answer = await raw(r.path, r.headers, r.method);
    t.equal(answer.status, r.status, `${r.what}: ${r.status}`);
    t.match(answer.body, new RegExp(`^\\{.*"status":${r.status},"code":"${r.code}"`), `${r.what}: problem+json ${r.code}`);
  }
  t.ok(
    orders.events.some((e) => e.name === 'warden.access.denied' && e['warden.code'] === 'ERR_EGRESS_BROWSER_REFUSED'),
    'a browser request to egress is a security event',
  );
  t.equal(paymentsBackend.requests.length, 2, 'only the verified calls reached the destination backend');
  // Node's own fetch sends `sec-fetch-mode: cors` on every request: a backend's call, not a browser's.
  const fetched = await fetch(`http://127.0.0.1:${port}/payments/echo`);
  t.equal(fetched.status, 200, "a backend calling egress with Node's fetch is served");
  await fetched.body?.cancel();
  t.equal(paymentsBackend.requests.length, 3, 'and reaches the destination');
  // A destination's redirect out of itself is not followed with this workload's identity: back into
  // egress (another service), or anywhere on loopback (the admin listener).
  for (const to of [`http://127.0.0.1:${port}/other/admin/delete`, 'http://localhost:9901/tokens/revoke', `//127.0.0.1:${port}/x`]) {
    const redirected = await request(`${egress}/payments/redirect?to=${encodeURIComponent(to)}`);
    t.equal(redirected.statusCode, 502, `307 to ${to}: refused`);
    t.match(await redirected.body.json(), { code: 'ERR_UPSTREAM_PROTOCOL', detail: /redirect out of the destination/ });
  }
  const within = await request(`${egress}/payments/redirect?to=${encodeURIComponent('/login?next=1')}`);
  t.equal(within.statusCode, 307);
  t.equal(within.headers.location, '/payments/login?next=1', 'a redirect inside the destination stays inside it (path form)');
  await within.body.dump();
  // By address: a name is resolved first, and idp.example resolves nowhere (egress-redirect.test.ts).
  const away = await request(`${egress}/payments/redirect?to=${encodeURIComponent('https://192.0.2.7/authorize')}`);
  t.equal(away.headers.location, 'https://192.0.2.7/authorize', 'one to another host passes (egress plays no part in it)');
  await away.body.dump();
  t.equal(paymentsBackend.requests.length, 8, "the redirects were the destination backend's answers");
  // The proxy form's user name and password are not logged with the refusal (url.path).
  const withUserinfo = await raw('http://user:S3cretEg@payments/echo', { host: 'evil.example' });
  t.equal(withUserinfo.status, 421, 'a proxy-form target with userinfo and a foreign Host: refused');
  t.notOk(JSON.stringify([orders.events, orders.logs]).includes('S3cretEg'), 'its password is in no event or log line');
  t.ok(
    orders.events.some((e) => e['url.path'] === 'http://***@payments/echo'),
    'the event names the target without it',
  );
  const proxyHost = await raw('http://payments/echo', { host: 'payments' });
  t.equal(proxyHost.status, 200, 'proxy form with the Host HTTP clients set from the URL: served');
  const localhost = await raw('/payments/echo', { host: `localhost:${port}` });
  t.equal(localhost.status, 200, 'path form, Host localhost: served');
  t.equal(paymentsBackend.requests.length, 10);

  // A destination that never answers holds the backend's call no longer than egress.timeouts (undici's own
  // defaults: headers and body 300 s, connect 10 s; the payments sidecar's upstream headers timeout is 30 s).
  const egressTimeout = (rule: string) => orders.events.some((e) => e.name === 'warden.upstream.failed' && e['warden.rule'] === rule);
  const silent = await request(`${egress}/payments/hang`);
  t.equal(silent.statusCode, 504, 'no response headers within egress.timeouts.headers: 504');
  t.match(await silent.body.json(), { code: 'ERR_UPSTREAM_TIMEOUT' });
  t.ok(egressTimeout('egress.timeouts.headers'), 'from egress, whose event names its timeout');
  const stalled = await request(`${egress}/payments/stall-body`);
  t.equal(stalled.statusCode, 200);
  await t.rejects(stalled.body.text(), 'a response body that stops for egress.timeouts.body is cut, not left open');
  const handshake = await request(`${egress}/tarpit/echo`);
  t.equal(handshake.statusCode, 504, 'no TLS handshake within egress.timeouts.connect: 504');
  t.match(await handshake.body.json(), { code: 'ERR_UPSTREAM_TIMEOUT' });
  t.ok(egressTimeout('egress.timeouts.connect'), 'the event names the connect timeout');
  // The event loop stalled past both deadlines (connect 500 ms from the connection's start, headers
  // 1 s from dispatch; a loaded CI host): undici's connect timer only queued its verdict
  // (setImmediate), so the headers timer answered first and blamed egress.timeouts.headers.
  const connectTimeouts = () => orders.events.filter((e) => e['warden.rule'] === 'egress.timeouts.connect').length;
  const [connectsBefore, tarpitBefore] = [connectTimeouts(), tarpitSockets.length];
  const blocked = request(`${egress}/tarpit/echo`);
  while (tarpitSockets.length === tarpitBefore) await sleep(5);
  const stallUntil = Date.now() + 1200;
  while (Date.now() < stallUntil); // the stall: both timers expire in one turn of the loop
  const afterStall = await blocked;
  t.equal(afterStall.statusCode, 504, 'a stall past both deadlines: 504');
  await afterStall.body.dump();
  t.equal(connectTimeouts(), connectsBefore + 1, 'and the event still names the connect timeout, which expired first');
  t.equal(paymentsBackend.requests.length, 12);

  // A revoked destination is refused once the CRL arrives, though egress holds a kept-alive connection to it.
  await ca.server.revoke({ spiffe_id: PAYMENTS });
  await sleep(1200); // refresh.crl is 500 ms
  const revoked = await request(`${egress}/payments/echo`);
  t.equal(revoked.statusCode, 502, 'a revoked destination is refused');
  t.match(await revoked.body.json(), { code: 'ERR_EGRESS_PEER_MISMATCH' });
  t.equal(paymentsBackend.requests.length, 12, 'and never reached');
});

t.test('a changed mesh.spiffe_id: enroll again with a token, a clear error without one', async (t) => {
  const ca = await startCa(t);
  const config = meshConfig(ca.server).mesh;
  const first = await startIdentity(t, config);
  await first.identity.stop();
  const PAYMENTS = id('ns/payments/sa/api');
  await t.rejects(startIdentity(t, { ...config, spiffe_id: PAYMENTS, bootstrap_token: undefined }), {
    name: 'MeshStartupError',
    code: 'ERR_MESH_TOKEN_REQUIRED',
    message: /holds credentials for .*orders, not mesh\.spiffe_id .*payments.*; set mesh\.bootstrap_token/,
  });
  const renamed = await startIdentity(t, {
    ...config,
    spiffe_id: PAYMENTS,
    bootstrap_token: ca.server.createToken({ spiffe_id: PAYMENTS, dns_names: ['localhost'] }).token,
  });
  t.equal(renamed.identity.status().spiffeId, PAYMENTS, 'enrolled as the new identity');
  t.ok(renamed.events.some((e) => e.name === 'warden.mesh.enrolled'));
  await renamed.identity.stop();
  await t.rejects(
    startIdentity(t, { ...config, bootstrap_token: undefined }),
    /holds credentials for .*payments/,
    'the state dir now holds the new one',
  );
});

t.test('a workload holding the CA’s DNS name cannot pose as the CA: the trust bundle stays, the refusal is an error', async (t) => {
  const ca = await startCa(t, { server: { dns_names: ['localhost'], ip_addresses: ['127.0.0.1'] } });
  const attacker = await enrollWorkload(ca.server, id('ns/shop/sa/attacker'), ['localhost']);
  const port = ca.server.port;
  const { identity, events, logs } = await startIdentity(t, {
    ...meshConfig(ca.server).mesh,
    ca: { url: `https://localhost:${port}`, fingerprint: ca.server.fingerprint, timeout: '2s' },
    refresh: { bundle: '200ms', crl: '1m' },
  });
  const rootsBefore = identity.material().ca;
  const startupEvents = events.length;
  // The attacker takes over the CA's address and serves its own "bundle".
  await ca.server.close();
  let answered = 0;
  const impostor = createHttpsServer({ key: attacker.keyPem, cert: attacker.certPem }, (_req, res) => {
    answered++;
    res.end(attacker.certPem);
  });
  await new Promise<void>((resolve) => impostor.listen(port, '127.0.0.1', resolve));
  t.teardown(() => {
    impostor.closeAllConnections();
    return new Promise((resolve) => impostor.close(resolve));
  });
  const later = () => events.slice(startupEvents);
  const refusal = () => logs.find((l) => l.msg === 'mesh bundle refresh failed; keeping the last good copy');
  const deadline = Date.now() + 10_000;
  while (!refusal() && !later().some((e) => e.name === 'warden.mesh.trust_updated') && Date.now() < deadline) await sleep(50);
  t.same(later(), [], 'no trust_updated: nothing from the impostor was applied');
  t.equal(identity.material().ca, rootsBefore, 'the trust bundle is the CA’s');
  t.equal(answered, 0, 'no request reached the impostor (refused at the handshake)');
  t.match(refusal(), { level: 'error', 'error.type': 'ERR_CA_UNTRUSTED (ERR_CA_IDENTITY_MISMATCH)', err: /not the Warden CA/ });
});

/**
 * The two CA directories of a root rotation (docs/mesh-identity.md): A, the CA now, and B, the one
 * under the new root, sharing one ledger; `caConfig` serves either on a port.
 */
async function rotationCas(extra: Record<string, unknown> = {}) {
  const base = mkdtempSync(join(tmpdir(), 'warden-rotation-'));
  const [dirA, dirB] = [join(base, 'a'), join(base, 'b')];
  await initCa({ trustDomain: TRUST_DOMAIN, dir: dirA });
  await initCa({ trustDomain: TRUST_DOMAIN, dir: dirB });
  const [rootA, rootB] = [readFileSync(join(dirA, 'root.crt'), 'utf8'), readFileSync(join(dirB, 'root.crt'), 'utf8')];
  // The old directory's database, as the docs' step 3 says (`same database.path`).
  const database = { path: join(dirA, 'ca.db') };
  const caConfig = (dir: string, port: number) =>
    resolveCaConfig({ trust_domain: TRUST_DOMAIN, dir, listen: { host: '127.0.0.1', port }, database, log: { level: 'silent' }, ...extra });
  return { dirA, dirB, rootA, rootB, caConfig };
}

t.test('root rotation with a renewal between steps 2 and 3: the renewal applies the new bundle, the CA stays reachable', async (t) => {
  // docs/mesh-identity.md "Root rotation", with a bundle refresh far away: only the renewal can bring the new root.
  const { dirA, dirB, rootA, rootB, caConfig } = await rotationCas({ certificates: { lifetime: '6s', backdate: '0s' } });
  const servers: CaServer[] = [await startCaServer({ config: caConfig(dirA, 0) })];
  t.teardown(() => Promise.all(servers.map((s) => s.close())));
  const port = servers[0]!.port;
  const { identity, events } = await startIdentity(t, {
    ...meshConfig(servers[0]!).mesh,
    renew_at: 0.5,
    renew_jitter: 0,
    max_backoff: '1s',
    refresh: { bundle: '5m', crl: '5m' },
  });
  const changes: string[] = [];
  identity.onChange((what) => changes.push(what));
  const waitFor = async (what: () => boolean) => {
    const deadline = Date.now() + 12_000;
    while (!what() && Date.now() < deadline) await sleep(50);
  };
  const named = (name: string) => events.filter((e) => e.name === name);

  // Step 2: the old CA serves both roots.
  await servers[0]!.close();
  appendFileSync(join(dirA, 'bundle.pem'), rootB);
  servers.push(await startCaServer({ config: caConfig(dirA, port) }));
  await waitFor(() => named('warden.mesh.rotated').length > 0);
  t.equal(named('warden.mesh.rotated').length, 1, 'renewed after step 2');
  t.equal((identity.material().ca.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'material().ca holds both roots');
  t.same(changes, ['certificate', 'bundle'], 'listeners hear of the new bundle as from a refresh');
  t.match(named('warden.mesh.trust_updated').at(-1), { 'warden.detail': 'bundle: 2 root(s)' });

  // Step 3: the CA serves under the new root; the next renewal must reach it.
  await servers[1]!.close();
  writeFileSync(join(dirB, 'bundle.pem'), rootA + rootB);
  servers.push(await startCaServer({ config: caConfig(dirB, port) }));
  await waitFor(() => named('warden.mesh.rotated').length > 1 || named('warden.mesh.renewal_failed').length > 0);
  t.same(named('warden.mesh.renewal_failed'), [], 'no renewal failed');
  t.equal(named('warden.mesh.rotated').length, 2, 'renewed at the CA under the new root');
  t.equal(identity.status().lastError, undefined);
});

t.test('root rotation step 3: CRLs signed by the new intermediate are applied before the sidecar renews', async (t) => {
  // docs/mesh-identity.md "Root rotation": our certificate is still from the old intermediate.
  const { dirA, dirB, rootA, rootB, caConfig } = await rotationCas();
  const servers: CaServer[] = [await startCaServer({ config: caConfig(dirA, 0) })];
  t.teardown(() => Promise.all(servers.map((s) => s.close())));
  const port = servers[0]!.port;
  const { identity, logs } = await startIdentity(t, { ...meshConfig(servers[0]!).mesh, refresh: { bundle: '300ms', crl: '300ms' } });
  const waitFor = async (what: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!what() && Date.now() < deadline) await sleep(50);
  };
  const caller = await enrollWorkload(servers[0]!, id('ns/shop/sa/frontend'));
  const ourSerial = identity.material().serial;

  // Step 2: the old CA serves both roots; wait until the sidecar trusts both.
  await servers[0]!.close();
  appendFileSync(join(dirA, 'bundle.pem'), rootB);
  servers.push(await startCaServer({ config: caConfig(dirA, port) }));
  await waitFor(() => (identity.material().ca.match(/BEGIN CERTIFICATE/g) ?? []).length === 2);
  // Step 3: the CA under the new root signs the CRL with the new intermediate.
  await servers[1]!.close();
  writeFileSync(join(dirB, 'bundle.pem'), rootA + rootB);
  servers.push(await startCaServer({ config: caConfig(dirB, port) }));
  await servers[2]!.revoke({ serial: caller.serial, reason: 'keyCompromise' });
  await waitFor(() => identity.revocations.isRevoked(caller.serial));
  t.ok(identity.revocations.isRevoked(caller.serial), 'the revocation is enforced');
  t.equal(identity.material().serial, ourSerial, 'without a renewal in between');
  // The CA restarting on its port may reset a refresh (ERR_CA_UNAVAILABLE): not a CRL refused.
  t.same(
    logs.filter((l) => /crl refresh failed/.test(String(l.msg)) && !String(l['error.type']).startsWith('ERR_CA_UNAVAILABLE')),
    [],
    'no CRL was refused',
  );
});

t.test('root rotation step 3, restarted with the CA down: the saved CRL, signed by the new intermediate, stays in force', async (t) => {
  // A saved crl.der is checked as a fetched one is: its signer is kept beside it (crl-signer.pem),
  // as our own chain holds only the old intermediate until we renew.
  const { dirA, dirB, rootA, rootB, caConfig } = await rotationCas();
  const servers: CaServer[] = [await startCaServer({ config: caConfig(dirA, 0) })];
  t.teardown(() => Promise.all(servers.map((s) => s.close())));
  const port = servers[0]!.port;
  const fingerprint = (pem: string) => `sha256:${createHash('sha256').update(new X509Certificate(pem).raw).digest('hex')}`;
  const { mesh } = meshConfig(servers[0]!, { refresh: { bundle: '300ms', crl: '300ms' } });
  // Step 1: mesh.ca names both roots.
  const config = { ...mesh, ca: { ...mesh.ca, fingerprint: [fingerprint(rootA), fingerprint(rootB)] } };
  const first = await startIdentity(t, config);
  const waitFor = async (what: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!what() && Date.now() < deadline) await sleep(50);
  };
  const caller = await enrollWorkload(servers[0]!, id('ns/shop/sa/frontend'));
  const ourSerial = first.identity.material().serial;
  await servers[0]!.close();
  appendFileSync(join(dirA, 'bundle.pem'), rootB);
  servers.push(await startCaServer({ config: caConfig(dirA, port) }));
  await waitFor(() => (first.identity.material().ca.match(/BEGIN CERTIFICATE/g) ?? []).length === 2);
  await servers[1]!.close();
  writeFileSync(join(dirB, 'bundle.pem'), rootA + rootB);
  servers.push(await startCaServer({ config: caConfig(dirB, port) }));
  await servers[2]!.revoke({ serial: caller.serial, reason: 'keyCompromise' });
  await waitFor(() => first.identity.revocations.isRevoked(caller.serial));
  t.ok(first.identity.revocations.isRevoked(caller.serial), 'the CRL of the new intermediate is enforced');
  await first.identity.stop();
  await servers[2]!.close();

  const again = await startIdentity(t, { ...config, bootstrap_token: undefined });
  t.equal(again.identity.material().serial, ourSerial, 'restarted on the certificate of the old intermediate');
  t.ok(again.identity.revocations.isRevoked(caller.serial), 'the saved CRL is in force again: the revocation is enforced');
  t.same(
    again.logs.filter((l) => /persisted CRL/.test(String(l.msg))),
    [],
    'not ignored',
  );
});

t.test(
  'root rotation step 4: callers under the removed root lose their open connections, callers under the new root keep theirs',
  async (t) => {
    // docs/mesh-identity.md "Root rotation": OpenSSL checked a caller's chain at its handshake only.
    const { connect: h2Connect } = await import('node:http2');
    const { dirA, dirB, rootA, rootB, caConfig } = await rotationCas();
    const servers: CaServer[] = [await startCaServer({ config: caConfig(dirA, 0) })];
    t.teardown(() => Promise.all(servers.map((s) => s.close())));
    const port = servers[0]!.port;
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const s = await startTestSidecar(t, backend.url, meshConfig(servers[0]!, { refresh: { bundle: '300ms', crl: '5m' } }));
    const roots = () => (s.sidecar.mesh?.material().ca.match(/BEGIN CERTIFICATE/g) ?? []).length;
    const waitFor = async (what: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!what() && Date.now() < deadline) await sleep(50);
    };
    const readyz = () => readyzOf(s.adminUrl);
    t.equal((await readyz()).status, 200, 'ready under the old root');
    const oldCaller = await enrollWorkload(servers[0]!, id('ns/shop/sa/frontend'));
    // Steps 2 and 3: both roots trusted; the CA under the new root issues.
    await servers[0]!.close();
    appendFileSync(join(dirA, 'bundle.pem'), rootB);
    servers.push(await startCaServer({ config: caConfig(dirA, port) }));
    await waitFor(() => roots() === 2);
    await servers[1]!.close();
    writeFileSync(join(dirB, 'bundle.pem'), rootA + rootB);
    servers.push(await startCaServer({ config: caConfig(dirB, port) }));
    const newCaller = await enrollWorkload(servers[2]!, id('ns/shop/sa/checkout'));
    const open = (w: Workload) => {
      const session = h2Connect(s.url, { ca: rootA + rootB, cert: w.certPem, key: w.keyPem });
      session.on('error', () => undefined);
      t.teardown(() => session.destroy());
      return session;
    };
    const get = (session: ReturnType<typeof open>) =>
      new Promise<number | string>((resolve) => {
        let status: number | string = 'NO_RESPONSE';
        try {
          const stream = session.request({ ':path': '/echo' });
          stream.on('response', (h) => (status = Number(h[':status'])));
          stream.on('error', (err: NodeJS.ErrnoException) => (status = err.code ?? 'ERR'));
          stream.resume();
          stream.on('close', () => resolve(status));
          stream.end();
        } catch (err) {
          resolve((err as NodeJS.ErrnoException).code ?? 'ERR');
        }
      });
    const oldSession = open(oldCaller);
    const newSession = open(newCaller);
    t.equal(await get(oldSession), 200, 'a caller under the old root, before step 4');
    t.equal(await get(newSession), 200, 'a caller under the new root');
    const oldClosed = new Promise<boolean>((resolve) => {
      oldSession.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 8000).unref();
    });

    // Step 4: the old root leaves the bundle.
    await servers[2]!.close();
    writeFileSync(join(dirB, 'bundle.pem'), rootB);
    servers.push(await startCaServer({ config: caConfig(dirB, port) }));
    await waitFor(() => roots() === 1);
    t.equal(roots(), 1, 'the sidecar trusts the new root alone');
    // Its own certificate is still from the old root (step 4 applied before it renewed): no peer accepts it.
    const unready = await readyz();
    t.equal(unready.status, 503, 'a sidecar whose certificate no longer chains to its bundle is not ready');
    t.match(unready.body, 'does not chain to the trust bundle', 'and says why');
    const after = await get(oldSession);
    t.not(after, 200, `the old-root caller's open connection is not served (${after})`);
    t.ok(await oldClosed, '…and is closed');
    t.equal(await get(newSession), 200, 'the new-root caller keeps its connection');
    t.notOk(newSession.closed || newSession.destroyed, 'not closed');
    t.ok(
      s.events.some(
        (e) =>
          e.name === 'warden.tls.peer_denied' &&
          e['error.type'] === 'WARDEN_TRUST_ANCHOR_REMOVED' &&
          e['warden.peer.id'] === oldCaller.spiffeId,
      ),
      'warden.tls.peer_denied WARDEN_TRUST_ANCHOR_REMOVED',
    );
    t.ok(
      s.logs.some((l) => l.level === 'warn' && /a CA was removed from the trust bundle: closing 1 open connection/.test(String(l.msg))),
      'a warning says how many connections were closed',
    );
  },
);

t.test('workload.pem without a usable bundle.pem: the configured roots are used, the CA’s bundle fetched', async (t) => {
  const ca = await startCa(t);
  const config = { ...meshConfig(ca.server).mesh, refresh: { bundle: '5m', crl: '5m' } };
  const first = await startIdentity(t, config);
  const good = first.identity.material();
  await first.identity.stop();
  const bundleFile = join(config.state_dir, 'bundle.pem');
  for (const [how, damage] of [
    ['missing', () => rmSync(bundleFile)],
    ['empty', () => writeFileSync(bundleFile, '')],
  ] as const) {
    damage();
    const again = await startIdentity(t, { ...config, bootstrap_token: undefined });
    const m = again.identity.material();
    t.equal(m.serial, good.serial, `${how}: started on the persisted certificate`);
    t.equal(m.ca.trim(), ca.server.rootPem.trim(), `${how}: material().ca holds the CA's root`);
    t.equal(readFileSync(bundleFile, 'utf8').trim(), ca.server.rootPem.trim(), `${how}: bundle.pem restored`);
    t.same(
      again.logs.filter((l) => /refresh failed/.test(String(l.msg))),
      [],
      `${how}: the CA is still reachable`,
    );
    await again.identity.stop();
  }
});
