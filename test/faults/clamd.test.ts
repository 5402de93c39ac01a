/**
 * Fault suite — clamd (a real ClamAV daemon, project signatures). A real `warden proxy` process
 * under HTTP/1.1 + h2 load (uploads on a scanned route, plain requests on another) while clamd is
 * killed (SIGKILL), hangs, turns slow and comes back. `on_failure: fail-closed` (the default): an
 * upload that cannot be scanned is 503 ERR_SCANNER_UNAVAILABLE — EICAR never passes — within the
 * scan timeout; routes without scanning are unaffected; scanning resumes without a restart.
 */
import t from 'tap';
import { Agent, request } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { EICAR, startTestClamd } from '../support/clamd.js';
import { testCertificate } from '../support/certs.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';
import {
  expectOutcomes,
  expectRecovery,
  expectSurvived,
  MiB,
  rssBytes,
  runFaultCycle,
  sleep,
  startFaultGate,
  startLoad,
  summarise,
} from './fault-tools.js';

const SCAN_TIMEOUT_MS = 1000;
const MARGIN_MS = 1000;
const RECOVERY_BOUND_MS = 1500;
const RSS_BOUND = 64 * MiB;
const SCANNER_DOWN = '503 ERR_SCANNER_UNAVAILABLE';

t.test('clamd: kill, hang, slow, back — under load; fail closed', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const clamd = await startTestClamd(t);
  const gate = await startFaultGate(t, { port: clamd.port }, { delayMs: 100 });
  const warden = await spawnWarden(
    t,
    await testConfigYaml(backend.url, {
      log: { access: false },
      threats: { malware: { clamd: `tcp://127.0.0.1:${gate.port}`, timeout: `${SCAN_TIMEOUT_MS}ms` } },
      routes: [
        { id: 'upload', path: '/upload', methods: ['POST'], malware_scan: true },
        { id: 'other', path: '/other', methods: ['GET'] },
      ],
    }),
  );
  const pid = warden.child.pid as number;
  const ca = (await testCertificate()).certPem;
  const upload = (body: Buffer | string) => ({
    path: '/upload',
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body,
  });
  const load = startLoad(t, {
    url: warden.url,
    tls: { ca },
    workers: 2,
    maxRequests: 20_000,
    maxMs: 40_000,
    pacingMs: 10,
    next: (i) => (i % 2 ? { path: '/other', kind: 'other' } : { ...upload(`harmless upload ${i}`), kind: 'upload' }),
  });

  // EICAR during each phase: the security decision under test.
  const eicar: { phase: string; status: number }[] = [];
  const agent = new Agent({ connect: { ca, servername: 'localhost' } });
  t.teardown(() => agent.close());
  const probe = (waitMs: number) => async () => {
    await sleep(waitMs);
    const phase = load.phase;
    for (let i = 0; i < 3; i++) {
      const { headers, body } = upload(EICAR);
      const res = await request(`${warden.url}/upload`, { dispatcher: agent, method: 'POST', headers, body });
      await res.body.text();
      eicar.push({ phase, status: res.statusCode });
    }
  };
  const eicarStatuses = (phase: string) => [...new Set(eicar.filter((e) => e.phase === phase).map((e) => e.status))];

  await sleep(500);
  const rssBefore = rssBytes(pid);
  const marks = await runFaultCycle({
    load,
    gate,
    faultMs: 3 * SCAN_TIMEOUT_MS, // see backend.test.ts: a whole scan timeout fits in the phase after the switch
    backMs: 2000,
    kill: () => clamd.stop(),
    revive: () => clamd.start(),
    during: { kill: probe(100), hang: probe(100), slow: probe(300), back: probe(RECOVERY_BOUND_MS) },
  });
  const samples = await load.stop();
  await sleep(200);
  const rssAfter = rssBytes(pid);
  t.comment(JSON.stringify(summarise('clamd', samples, marks, { rssBeforeMiB: rssBefore / MiB, rssAfterMiB: rssAfter / MiB, eicar })));

  // HTTP/1.1 requests are bounded by the scan timeout. h2 uploads refused with 503 while clamd hangs
  // are answered by Warden within the timeout too (access log), but undici then sends the next upload
  // on that session only after the previous one is answered, so a queued one measures up to
  // 2 × timeout at the client — recorded in docs/reliability.md as an open finding.
  const h1 = samples.filter((s) => s.proto === 'h1');
  await expectSurvived(t, warden, h1, { timeoutMs: SCAN_TIMEOUT_MS, marginMs: MARGIN_MS, rssBefore, rssAfter, rssBound: RSS_BOUND });
  const h2Max = Math.max(...samples.filter((s) => s.proto === 'h2').map((s) => s.ms));
  t.ok(h2Max <= 2 * SCAN_TIMEOUT_MS + MARGIN_MS, `h2: max ${Math.round(h2Max)} ms (≤ 2 × timeout + margin)`);
  t.notOk(
    samples.some((s) => s.status === 0),
    'h2: every request got an HTTP answer',
  );
  for (const phase of ['baseline', 'kill', 'hang', 'slow', 'back-kill', 'back-hang', 'back-slow']) {
    expectOutcomes(t, samples, marks, phase, ['200'], 'other');
  }
  expectOutcomes(t, samples, marks, 'baseline', ['200'], 'upload');
  expectOutcomes(t, samples, marks, 'kill', [SCANNER_DOWN], 'upload');
  expectOutcomes(t, samples, marks, 'hang', [SCANNER_DOWN], 'upload');
  expectOutcomes(t, samples, marks, 'slow', ['200'], 'upload');
  expectRecovery(t, samples, marks, RECOVERY_BOUND_MS);
  for (const phase of ['kill', 'hang']) t.same(eicarStatuses(phase), [503], `${phase}: EICAR refused with 503, never forwarded`);
  for (const phase of ['slow', 'back-kill', 'back-hang', 'back-slow']) t.same(eicarStatuses(phase), [422], `${phase}: EICAR found (422)`);
  t.ok(
    warden.lines.some((l) => l.event === 'warden.scanner.unavailable'),
    'the outage is reported as warden.scanner.unavailable',
  );
});
