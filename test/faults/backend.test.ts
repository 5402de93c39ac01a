/**
 * Fault suite — the backend (upstream). A real `warden proxy` process under HTTP/1.1 + h2 load while
 * the backend is killed, hangs, turns slow and comes back: 502 at once when it is gone, 504 after
 * `upstream.timeouts.headers` when it hangs, slower 200s when it is slow, 200s again without a
 * restart; no request outlives the timeout, the process stays up, RSS stays bounded.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';
import {
  expectOutcomes,
  expectRecovery,
  expectSurvived,
  MiB,
  phaseStats,
  rssBytes,
  runFaultCycle,
  settled,
  sleep,
  startFaultGate,
  startLoad,
  summarise,
} from './fault-tools.js';

const HEADERS_TIMEOUT_MS = 1000;
const MARGIN_MS = 1000;
const RECOVERY_BOUND_MS = 1500;
const RSS_BOUND = 64 * MiB;

t.test('backend: kill, hang, slow, back — under load', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const gate = await startFaultGate(t, { port: backend.port }, { delayMs: 150 });
  const warden = await spawnWarden(
    t,
    await testConfigYaml(`http://127.0.0.1:${gate.port}`, {
      upstream: { timeouts: { connect: '500ms', headers: `${HEADERS_TIMEOUT_MS}ms`, body: '1s' } },
      log: { access: false },
    }),
  );
  const pid = warden.child.pid as number;
  const load = startLoad(t, {
    url: warden.url,
    tls: { ca: (await testCertificate()).certPem },
    workers: 2,
    maxRequests: 20_000,
    maxMs: 30_000,
    pacingMs: 20,
    next: () => ({ path: '/echo' }),
  });
  await sleep(500);
  const rssBefore = rssBytes(pid);
  // Three headers timeouts per fault: a request caught by the switch into `hang` may take one
  // timeout to end; at least one whole request must still start and end inside the phase.
  const marks = await runFaultCycle({ load, gate, faultMs: 3 * HEADERS_TIMEOUT_MS, backMs: 1500 });
  const samples = await load.stop();
  await sleep(200);
  const rssAfter = rssBytes(pid);

  t.comment(JSON.stringify(summarise('backend', samples, marks, { rssBeforeMiB: rssBefore / MiB, rssAfterMiB: rssAfter / MiB })));

  await expectSurvived(t, warden, samples, {
    timeoutMs: HEADERS_TIMEOUT_MS,
    marginMs: MARGIN_MS,
    rssBefore,
    rssAfter,
    rssBound: RSS_BOUND,
  });
  expectOutcomes(t, samples, marks, 'baseline', ['200']);
  expectOutcomes(t, samples, marks, 'kill', ['502 ERR_UPSTREAM_UNAVAILABLE']);
  t.ok(phaseStats(settled(samples, 'kill', marks), 'kill').p50Ms < 100, 'killed: refused at once');
  expectOutcomes(t, samples, marks, 'hang', ['504 ERR_UPSTREAM_TIMEOUT']);
  t.ok(phaseStats(settled(samples, 'hang', marks), 'hang').p50Ms >= HEADERS_TIMEOUT_MS - 50, 'hanging: answered at the headers timeout');
  expectOutcomes(t, samples, marks, 'slow', ['200']);
  t.ok(phaseStats(settled(samples, 'slow', marks), 'slow').p50Ms >= 250, 'slow (150 ms per hop): 200, and really slower');
  expectRecovery(t, samples, marks, RECOVERY_BOUND_MS);
});
