/**
 * Fault suite — the OpenTelemetry collector (an OTLP/HTTP receiver). A real `warden proxy` process
 * exporting traces, logs and metrics under HTTP/1.1 + h2 load while the collector is killed, hangs,
 * turns slow and comes back. Export is off the request path (fail open): every request still gets
 * its 200 at its usual pace; spans arrive again after the collector returns, without a restart.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';
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
  timeUntil,
} from './fault-tools.js';

const REQUEST_BOUND_MS = 500; // nothing waits on the collector: requests stay fast
const MARGIN_MS = 500;
const EXPORT_RECOVERY_BOUND_MS = 8000; // the export breaker drops batches for 5 s after a failure
const RSS_BOUND = 64 * MiB;

t.test('OTel collector: kill, hang, slow, back — under load; requests unaffected', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const receiver = await startOtlpReceiver();
  t.teardown(() => receiver.close());
  const gate = await startFaultGate(t, { port: Number(new URL(receiver.url).port) }, { delayMs: 100 });
  const warden = await spawnWarden(
    t,
    await testConfigYaml(backend.url, {
      service: { name: 'orders' },
      log: { access: false },
      telemetry: { otlp: { endpoint: `http://127.0.0.1:${gate.port}`, export_interval: '200ms', timeout: '1s' } },
    }),
  );
  const pid = warden.child.pid as number;
  const load = startLoad(t, {
    url: warden.url,
    tls: { ca: (await testCertificate()).certPem },
    workers: 2,
    maxRequests: 30_000,
    maxMs: 60_000,
    pacingMs: 20,
    next: () => ({ path: '/echo' }),
  });
  const exportRecovery: Record<string, number> = {};
  const spansAgain = async () => {
    const phase = load.phase;
    const seen = receiver.spans.length;
    exportRecovery[phase] = await timeUntil(async () => receiver.spans.length > seen, EXPORT_RECOVERY_BOUND_MS, 100);
  };

  await sleep(500);
  const rssBefore = rssBytes(pid);
  const marks = await runFaultCycle({ load, gate, faultMs: 2000, backMs: 2000, during: { back: spansAgain } });
  const samples = await load.stop();
  await sleep(200);
  const rssAfter = rssBytes(pid);
  t.comment(
    JSON.stringify(summarise('otel', samples, marks, { rssBeforeMiB: rssBefore / MiB, rssAfterMiB: rssAfter / MiB, exportRecovery })),
  );

  await expectSurvived(t, warden, samples, { timeoutMs: REQUEST_BOUND_MS, marginMs: MARGIN_MS, rssBefore, rssAfter, rssBound: RSS_BOUND });
  for (const phase of ['baseline', 'kill', 'back-kill', 'hang', 'back-hang', 'slow', 'back-slow']) {
    expectOutcomes(t, samples, marks, phase, ['200']);
  }
  for (const phase of ['back-kill', 'back-hang', 'back-slow']) {
    const ms = exportRecovery[phase] ?? -1;
    t.ok(ms >= 0 && ms <= EXPORT_RECOVERY_BOUND_MS, `${phase}: spans reach the collector again after ${ms} ms`);
  }
});
