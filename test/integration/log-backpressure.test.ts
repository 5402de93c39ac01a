/**
 * A stdout nobody reads (a stalled log driver, `warden proxy | cat` with cat stopped) or reads
 * slowly: the sidecar keeps serving, /healthz keeps answering, lines are dropped (access lines
 * first) and counted, and one line says how many once stdout takes lines again. Every line is
 * whole. Before, every log write was synchronous: after a few hundred KiB the whole process stopped
 * in write(2), data plane and admin listener alike (docs/adversarial.md).
 */
import t from 'tap';
import { request, type Agent } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { testCertificate } from '../support/certs.js';
import { spawnWarden, testConfigYaml, type Teardown, type WardenProcess } from '../support/sidecar.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Json = Record<string, unknown>;

/** ~8 KiB of log a refused request (its access line and its security event: path and user agent). */
const LONG_PATH = `/secret/${'a'.repeat(3000)}`;
const USER_AGENT = `probe/${'u'.repeat(1000)}`;

async function startWarden(t: Teardown): Promise<{ warden: WardenProcess; raw: () => string; agent: Agent; probes: Agent }> {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const warden = await spawnWarden(
    t,
    await testConfigYaml(backend.url, {
      routes: [
        { id: 'secret', path: '/secret/*', access: { action: 'deny' } },
        { id: 'all', path: '/*' },
      ],
    }),
  );
  let raw = '';
  warden.child.stdout!.on('data', (d: Buffer) => (raw += d.toString()));
  const cert = await testCertificate();
  const agent = testAgent(cert.certPem, { connections: 16 });
  const probes = testAgent(cert.certPem, { connections: 1 });
  t.teardown(() => Promise.all([agent.close(), probes.close()]));
  return { warden, raw: () => raw, agent, probes };
}

/** `count` refused requests, 16 at a time; stops at the first that fails or takes over 3 s. */
async function flood(warden: WardenProcess, agent: Agent, count: number): Promise<{ answered: number; failed: number }> {
  let next = 0;
  let answered = 0;
  let failed = 0;
  const worker = async () => {
    while (next < count && failed === 0) {
      next++;
      try {
        const res = await request(`${warden.url}${LONG_PATH}`, {
          dispatcher: agent,
          headers: { 'user-agent': USER_AGENT },
          signal: AbortSignal.timeout(3000),
        });
        await res.body.text();
        if (res.statusCode === 403) answered++;
        else failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return { answered, failed };
}

/** Runs `during` while /healthz and a good request are probed every 100 ms; their worst times and failures. */
async function probing<T>(warden: WardenProcess, probes: Agent, during: () => Promise<T>) {
  const worst = { healthz: 0, good: 0, failures: 0, goodCount: 0 };
  let done = false;
  const timed = async (key: 'healthz' | 'good', fn: () => Promise<number>) => {
    const start = performance.now();
    try {
      if ((await fn()) !== 200) worst.failures++;
      else if (key === 'good') worst.goodCount++;
    } catch {
      worst.failures++;
    }
    worst[key] = Math.max(worst[key], performance.now() - start);
  };
  const loop = (async () => {
    while (!done) {
      await Promise.all([
        timed('healthz', async () => (await fetchText(`${warden.adminUrl}/healthz`, probes, { signal: AbortSignal.timeout(2000) })).status),
        timed('good', async () => (await fetchText(`${warden.url}/ok`, probes, { signal: AbortSignal.timeout(2000) })).status),
      ]);
      await sleep(100);
    }
  })();
  const result = await during();
  done = true;
  await loop;
  return { result, worst };
}

t.test('a stdout nobody reads: the sidecar keeps serving; lines are dropped, counted and reported, whole', async (t) => {
  const { warden, raw, agent, probes } = await startWarden(t);
  // Warmed up while stdout is read (code compiled, connections open): what is measured is the stall.
  t.equal((await flood(warden, agent, 200)).failed, 0, 'warm-up');
  await probing(warden, probes, () => sleep(300));
  await sleep(300);
  warden.child.stdout!.pause();

  const started = Date.now();
  const { result, worst } = await probing(warden, probes, () => flood(warden, agent, 2000));
  t.equal(result.failed, 0, 'no refused request failed or timed out');
  t.equal(result.answered, 2000, 'all 2000 refused requests were answered');
  t.ok(Date.now() - started < 20_000, `the flood took ${Date.now() - started} ms`);
  t.equal(worst.failures, 0, '/healthz and the good requests kept answering');
  t.ok(worst.goodCount > 0, 'good requests were served meanwhile');
  t.ok(worst.healthz < 500, `/healthz answered within 500 ms (worst ${Math.round(worst.healthz)} ms)`);
  t.ok(worst.good < 1000, `good requests answered within 1 s (worst ${Math.round(worst.good)} ms)`);

  // stdout is read again: the drops are reported in one line and counted.
  warden.child.stdout!.resume();
  const report = await warden.waitFor((l) => typeof l.msg === 'string' && /^dropped \d+ log lines/.test(l.msg), 10_000);
  t.ok(Number(report['warden.log.dropped']) > 0, `the report says ${String(report['warden.log.dropped'])} lines were dropped`);
  t.equal(report.level, 'warn');
  const metrics = (await fetchText(`${warden.adminUrl}/metrics`, probes)).text;
  const dropped = (kind: string) =>
    Number(new RegExp(`warden_log_lines_dropped_total\\{[^}]*kind="${kind}"[^}]*\\} (\\d+)`).exec(metrics)?.[1] ?? NaN);
  t.ok(dropped('access') > 0, `access lines dropped: ${dropped('access')}`);
  t.ok(dropped('event') >= 0 && dropped('other') >= 0, 'the event and other series are there');
  t.equal(dropped('access') + dropped('event') + dropped('other'), Number(report['warden.log.dropped']), 'the report and the metric agree');

  // Events are kept longer than access lines: more of the flood's events were written than its access lines.
  await sleep(300);
  const lines = raw().split('\n');
  t.equal(lines.pop(), '', 'the output ends with a whole line');
  const parsed: Json[] = [];
  let broken = 0;
  for (const line of lines) {
    try {
      parsed.push(JSON.parse(line) as Json);
    } catch {
      broken++;
    }
  }
  t.equal(broken, 0, `every one of the ${lines.length} lines read is whole JSON`);
  const ofFlood = (l: Json) => typeof l['url.path'] === 'string' && l['url.path'].startsWith('/secret/');
  const access = parsed.filter((l) => ofFlood(l) && l.msg === 'request').length;
  const events = parsed.filter((l) => ofFlood(l) && typeof l.event === 'string').length;
  t.ok(events > access, `the flood's events outlasted its access lines (${events} events, ${access} access lines written)`);

  warden.child.kill('SIGTERM');
  t.equal(await warden.exited, 0);
  await sleep(100);
  t.ok(
    warden.lines.some((l) => l.msg === 'drained'),
    'the last lines are written at exit',
  );
});

t.test('SIGTERM while stdout is stalled: the exit waits for it only so long', async (t) => {
  const { warden, raw, agent } = await startWarden(t);
  warden.child.stdout!.pause();
  const { failed } = await flood(warden, agent, 300);
  t.equal(failed, 0);
  const signalled = Date.now();
  warden.child.kill('SIGTERM');
  const code = await Promise.race([warden.exited, sleep(8000).then(() => 'still running')]);
  t.equal(code, 0, `exited ${Date.now() - signalled} ms after SIGTERM`);
  t.ok(Date.now() - signalled < 6000, 'within 6 s (2 s waiting for stdout)');
  warden.child.stdout!.resume();
  await sleep(300);
  // Whole lines, but the one being written when the wait ran out may be cut short.
  const lines = raw().split('\n').slice(0, -1);
  t.ok(lines.length > 0);
  t.ok(
    lines.every((line) => {
      try {
        JSON.parse(line);
        return true;
      } catch {
        return false;
      }
    }),
    'every complete line is whole JSON',
  );
});
