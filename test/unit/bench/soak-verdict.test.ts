// The soak's verdict must be able to fail: a leak, an error, a request that fell behind.
import t from 'tap';
import { memoryGrowth, soakVerdict, type MemorySample, type SoakWindow } from '../../../bench/soak-verdict.js';

const SECONDS = 60;
const window = (t: number, extra: Partial<SoakWindow> = {}): SoakWindow => ({
  t,
  seconds: 5,
  completed: 500,
  ok: 500,
  errors: 0,
  overload: 0,
  statuses: { 200: 500 },
  ...extra,
});
const windows = Array.from({ length: 12 }, (_, i) => window((i + 1) * 5));
/** One sample a second: a sawtooth heap (GC) around `base`, plus `slope` MiB per second. */
const memory = (slope: number, base = 40): MemorySample[] =>
  Array.from({ length: SECONDS + 1 }, (_, s) => ({ t: s, rss_mib: 120 + slope * s, heap_mib: base + (s % 7) * 2 + slope * s }));
const verdict = (mem: MemorySample[], w = windows, summary = { sent: 6000, unanswered: 0 }) =>
  soakVerdict({ windows: w, memory: mem, summary, seconds: SECONDS, maxHeapGrowthMiB: 16, maxRssGrowthMiB: 32 });

t.test('a flat, sawing heap passes', async (t) => {
  const v = verdict(memory(0));
  t.ok(v.pass, v.failures.join('; '));
  t.ok(Math.abs(v.heapGrowth ?? 99) <= 2, `growth ${v.heapGrowth} MiB`);
  t.equal(v.totals.ok, 6000);
});

t.test('a heap that keeps growing fails, named with its growth', async (t) => {
  const v = verdict(memory(0.5)); // 30 MiB a minute
  t.notOk(v.pass);
  t.match(v.failures.join(';'), /heap grew by [\d.]+ MiB after warm-up/);
  t.ok((v.heapGrowth ?? 0) > 16);
});

t.test('warm-up growth is not a leak: only what follows the first quarter counts', async (t) => {
  const mem = memory(0).map((m) => ({ ...m, heap_mib: (m.heap_mib ?? 0) + (m.t < 15 ? m.t * 3 : 45) }));
  t.ok(verdict(mem).pass);
});

t.test('errors, overload and unanswered requests fail it', async (t) => {
  const bad = [...windows.slice(0, 11), window(60, { ok: 497, errors: 3, statuses: { 200: 497, 503: 3 } })];
  t.match(verdict(memory(0), bad).failures.join(';'), /3 requests failed \(\{"200":5997,"503":3\}\)/);
  const behind = [...windows.slice(0, 11), window(60, { completed: 400, ok: 400, overload: 100 })];
  t.match(verdict(memory(0), behind).failures.join(';'), /100 requests could not be sent/);
  t.match(verdict(memory(0), windows, { sent: 6002, unanswered: 2 }).failures.join(';'), /2 requests were never answered/);
});

t.test('too few samples cannot pass', async (t) => {
  t.equal(memoryGrowth(memory(0).slice(0, 12), 'heap_mib', SECONDS), undefined);
  t.match(verdict(memory(0).slice(0, 12)).failures.join(';'), /too few memory samples/);
});
