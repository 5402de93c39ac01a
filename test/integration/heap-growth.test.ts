/**
 * limits.heap_growth sets V8's old-generation growth factor on the running sidecar, at start and on
 * a reload that changes it, and V8 honours the flag set that way (src/proxy/heap-growth.ts).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestBackend } from '../support/backend.js';
import { repoRoot, spawnWarden, testConfigYaml } from '../support/sidecar.js';

const run = promisify(execFile);

/** The peak V8 heap of the fixture's proxy-shaped load, with the factor applied by Warden's code, or V8's own. */
async function peakHeapMiB(factor?: number): Promise<number> {
  const args = [join(repoRoot, 'test/fixtures/heap-growth/churn.mjs'), ...(factor === undefined ? [] : [String(factor)])];
  const { stdout } = await run(process.execPath, args);
  return (JSON.parse(stdout) as { peakMiB: number }).peakMiB;
}

/** The environment that logs every v8.setFlagsFromString call of a Warden process, and the calls logged so far. */
function flagLog() {
  const log = join(mkdtempSync(join(tmpdir(), 'warden-v8-flags-')), 'flags.txt');
  const env = { NODE_OPTIONS: `--require=${join(repoRoot, 'test/fixtures/heap-growth/flag-log.cjs')}`, WARDEN_V8_FLAG_LOG: log };
  const flags = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
  return { env, flags };
}

t.test('V8 honours the factor set on a running process: the old space stays near what is alive', async (t) => {
  const own = await peakHeapMiB();
  const tight = await peakHeapMiB(1.1);
  // ~31 MiB alive, and garbage promoted all along: V8's own factor let the heap reach ~220 MiB here, 1.1 ~105.
  t.ok(tight < own * 0.7, `peak heap with heap_growth 1.1: ${tight} MiB, with V8's own factor: ${own} MiB`);
});

t.test('the sidecar sets it at start (2 by default), again on a reload that changes it, and gives it back to V8 with "auto"', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { env, flags } = flagLog();

  const warden = await spawnWarden(t, await testConfigYaml(backend.url, {}), env);
  t.same(flags(), ['--heap-growing-percent=100'], 'set at start: the default, 2');

  let reloads = 0;
  const reload = async (limits: Record<string, unknown>) => {
    writeFileSync(warden.configFile, await testConfigYaml(backend.url, { limits }));
    warden.child.kill('SIGHUP');
    const seen = ++reloads;
    await warden.waitFor(() => warden.lines.filter((l) => l.event === 'warden.config.reloaded').length >= seen);
  };
  await reload({ heap_growth: 1.5 });
  t.same(flags(), ['--heap-growing-percent=100', '--heap-growing-percent=50'], 'changed on reload');
  await reload({ heap_growth: 1.5, max_in_flight: 100 });
  t.equal(flags().length, 2, 'a reload that keeps it sets nothing');
  await reload({ heap_growth: 'auto' });
  t.same(flags().at(-1), '--heap-growing-percent=0', '"auto": V8 decides again');
  await reload({});
  t.same(flags().at(-1), '--heap-growing-percent=100', 'removed: the default again');
});

t.test('with heap_growth "auto" the sidecar leaves V8 alone', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { env, flags } = flagLog();
  await spawnWarden(t, await testConfigYaml(backend.url, { limits: { heap_growth: 'auto' } }), env);
  t.same(flags(), [], 'no V8 flag set');
});
