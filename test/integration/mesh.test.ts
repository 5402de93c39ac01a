/**
 * Mesh mode end to end, with a real Warden CA and real TLS: enrollment, restart on persisted
 * credentials, rotation under continuous load with zero failed requests, CA outage and recovery,
 * revocation within one CRL refresh, expired callers refused at the handshake, `mtls: optional`
 * routes, fingerprint pinning, `warden enroll`. Egress and root rotation are in mesh-egress and
 * mesh-rotation.test.ts (tap runs the three side by side).
 */
import t from 'tap';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { type CaServer } from '../../src/ca/server.js';
import { LOCK_FILE } from '../../src/mesh/state-lock.js';
import { startTestBackend } from '../support/backend.js';
import { meshSection, startRestartableCa, TRUST_DOMAIN } from '../support/ca-harness.js';
import { curl } from '../support/clients.js';
import { startIdentity } from '../support/mesh-identity.js';
import { startTestSidecar } from '../support/sidecar.js';
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
