/**
 * Fault suite — configuration reload (SIGHUP) under load. A real `warden proxy` process serving
 * HTTP/1.1 + h2 callers is reloaded ten times with alternating valid files (routes, limits, upstream
 * timeouts change): zero failed requests, every reload applied, memory bounded.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';
import { expectSurvived, MiB, rssBytes, sleep, startLoad, phaseStats } from './fault-tools.js';

const RELOADS = 10;
const RSS_BOUND = 64 * MiB;

t.test('SIGHUP reload ×10 under load: zero failed requests', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const variant = (i: number) =>
    testConfigYaml(backend.url, {
      log: { access: false },
      upstream: { timeouts: { headers: i % 2 ? '5s' : '10s' } },
      limits: { max_body_bytes: i % 2 ? '1MiB' : '2MiB' },
      routes: [
        { id: 'api', path: '/api/*', methods: ['GET'] },
        ...(i % 2 ? [{ id: `extra${i}`, path: `/extra${i}/*` }] : []),
        { id: 'denied', path: '/admin/*', access: { action: 'deny' } },
      ],
    });
  const warden = await spawnWarden(t, await variant(0));
  const pid = warden.child.pid as number;
  const load = startLoad(t, {
    url: warden.url,
    tls: { ca: (await testCertificate()).certPem },
    workers: 2,
    maxRequests: 20_000,
    maxMs: 30_000,
    pacingMs: 10,
    next: (i) => ({ path: `/api/item-${i}` }),
  });
  await sleep(500);
  const rssBefore = rssBytes(pid);
  load.phase = 'reloading';
  const reloaded = () => warden.lines.filter((l) => l.event === 'warden.config.reloaded').length;
  const reloadMs: number[] = [];
  for (let i = 1; i <= RELOADS; i++) {
    writeFileSync(warden.configFile, await variant(i));
    const before = reloaded();
    const started = performance.now();
    warden.child.kill('SIGHUP');
    await warden.waitFor(() => reloaded() > before, 5000);
    reloadMs.push(Math.round(performance.now() - started));
    await sleep(300);
  }
  load.phase = 'end';
  const samples = await load.stop();
  await sleep(200);
  const rssAfter = rssBytes(pid);
  const stats = phaseStats(samples, 'reloading');
  t.comment(JSON.stringify({ dependency: 'reload', ...stats, reloadMs, rssMiB: [rssBefore / MiB, rssAfter / MiB] }));

  await expectSurvived(t, warden, samples, { timeoutMs: 500, marginMs: 500, rssBefore, rssAfter, rssBound: RSS_BOUND });
  t.equal(reloaded(), RELOADS, `${RELOADS} reloads applied`);
  t.ok(stats.count > 200, `${stats.count} requests during the reloads`);
  t.same(Object.keys(stats.outcomes), ['200'], 'zero failed requests');
  t.notOk(
    warden.lines.some((l) => l.event === 'warden.config.reload_failed'),
    'no reload refused',
  );
});
