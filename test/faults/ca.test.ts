/**
 * Fault suite — the Warden CA, and certificate rotation under load. A real `warden proxy` process in
 * mesh mode, enrolled at a CA that issues 6-second certificates (renewal at 50 %: a rotation every
 * ~3 s), serves mTLS callers over HTTP/1.1 + h2 while the CA is killed, hangs, turns slow and comes
 * back. Nothing a caller sees depends on the CA: zero failed requests through every phase and every
 * rotation; renewals fail (warden.mesh.renewal_failed) while the CA is away and resume after it.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBackend } from '../support/backend.js';
import { TRUST_DOMAIN } from '../support/ca-harness.js';
import { startFaultCa } from './fault-ca.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';
import { enrollWorkload } from '../support/workload.js';
import {
  expectOutcomes,
  expectSurvived,
  MiB,
  rssBytes,
  runFaultCycle,
  sleep,
  startFaultGate,
  startLoad,
  summarise,
} from './fault-tools.js';

const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;
const REQUEST_BOUND_MS = 500; // nothing on the request path waits for the CA
const MARGIN_MS = 500;
const RSS_BOUND = 64 * MiB;

t.test('CA: kill, hang, slow, back — under load, rotating every ~3 s; zero failed requests', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const ca = await startFaultCa(t, '6s');
  const caller = await enrollWorkload(await startFaultCa(t, '1h'), `spiffe://${TRUST_DOMAIN}/ns/shop/sa/frontend`);
  const gate = await startFaultGate(t, { port: ca.port }, { delayMs: 100 });
  const caUrl = new URL(ca.url);
  caUrl.port = String(gate.port);
  const warden = await spawnWarden(
    t,
    await testConfigYaml(backend.url, {
      service: { name: 'orders' },
      log: { access: false },
      mesh: {
        spiffe_id: ORDERS,
        dns_names: ['localhost'],
        ca: { url: caUrl.origin, fingerprint: ca.fingerprint, timeout: '500ms' },
        bootstrap_token: ca.createToken({ spiffe_id: ORDERS, dns_names: ['localhost'] }).token,
        state_dir: mkdtempSync(join(tmpdir(), 'warden-state-')),
        renew_at: 0.5,
        renew_jitter: 0,
        max_backoff: '500ms',
        refresh: { bundle: '1s', crl: '1s' },
      },
    }),
  );
  const pid = warden.child.pid as number;
  const load = startLoad(t, {
    url: warden.url,
    tls: { ca: caller.bundlePem, cert: caller.certPem, key: caller.keyPem },
    workers: 2,
    maxRequests: 30_000,
    maxMs: 60_000,
    pacingMs: 20,
    next: () => ({ path: '/echo' }),
  });
  const rotated = () => warden.lines.filter((l) => l.event === 'warden.mesh.rotated').length;

  await sleep(500);
  const rssBefore = rssBytes(pid);
  const rotationsBefore = rotated();
  const marks = await runFaultCycle({ load, gate, faultMs: 2000, backMs: 3500 });
  const samples = await load.stop();
  await sleep(200);
  const rssAfter = rssBytes(pid);
  const rotations = rotated() - rotationsBefore;
  const renewalFailures = warden.lines.filter((l) => l.event === 'warden.mesh.renewal_failed').length;
  t.comment(
    JSON.stringify(
      summarise('ca', samples, marks, { rssBeforeMiB: rssBefore / MiB, rssAfterMiB: rssAfter / MiB, rotations, renewalFailures }),
    ),
  );

  await expectSurvived(t, warden, samples, { timeoutMs: REQUEST_BOUND_MS, marginMs: MARGIN_MS, rssBefore, rssAfter, rssBound: RSS_BOUND });
  for (const phase of ['baseline', 'kill', 'back-kill', 'hang', 'back-hang', 'slow', 'back-slow']) {
    expectOutcomes(t, samples, marks, phase, ['200']);
  }
  t.equal(samples.filter((s) => s.status !== 200).length, 0, `zero failed requests out of ${samples.length}`);
  t.ok(rotations >= 3, `the certificate rotated during the run (${rotations} times)`);
  t.ok(renewalFailures >= 1, `renewals failed while the CA was away (${renewalFailures} warden.mesh.renewal_failed)`);
  t.ok(
    warden.lines.some((l) => l.event === 'warden.mesh.rotated' && (l.time as number) > Date.now() - 4000),
    'and resumed after it came back',
  );
});
