// The soak's verdict (bench/soak.js): totals over the windows, memory growth after warm-up, and
// the failures — any failed, unsent or unanswered request, or memory that keeps growing.
import { median } from './lib.js';

const round1 = (x) => Math.round(x * 10) / 10;

/**
 * Growth of one memory series after warm-up (the first quarter, at least 10 s): the median of the
 * last third of the samples minus the median of the first third. Medians, because the heap saws up
 * and down with every collection. Undefined when there are too few samples to tell.
 */
export function memoryGrowth(memory, key, seconds) {
  const warm = memory.filter((m) => m.t >= Math.max(10, seconds / 4) && m.t <= seconds && m[key] !== undefined).map((m) => m[key]);
  if (warm.length < 6) return undefined;
  const third = Math.floor(warm.length / 3);
  return round1(median(warm.slice(-third)) - median(warm.slice(0, third)));
}

export function soakVerdict({ windows, memory, summary, seconds, maxHeapGrowthMiB, maxRssGrowthMiB }) {
  const totals = { completed: 0, ok: 0, errors: 0, overload: 0 };
  const statuses = {};
  for (const w of windows) {
    for (const k of Object.keys(totals)) totals[k] += w[k];
    for (const [k, v] of Object.entries(w.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  }
  const heapGrowth = memoryGrowth(memory, 'heap_mib', seconds);
  const rssGrowth = memoryGrowth(memory, 'rss_mib', seconds);
  const failures = [];
  if (totals.errors > 0) failures.push(`${totals.errors} requests failed (${JSON.stringify(statuses)})`);
  if (totals.overload > 0) failures.push(`${totals.overload} requests could not be sent: the sidecar fell behind the rate`);
  if (summary.unanswered > 0) failures.push(`${summary.unanswered} requests were never answered`);
  if (totals.completed < summary.sent - totals.overload - summary.unanswered)
    failures.push(`${summary.sent - totals.completed} requests sent but not counted`);
  if (heapGrowth === undefined) failures.push('too few memory samples for the leak check');
  else if (heapGrowth > maxHeapGrowthMiB) failures.push(`heap grew by ${heapGrowth} MiB after warm-up (limit ${maxHeapGrowthMiB})`);
  if (rssGrowth !== undefined && rssGrowth > maxRssGrowthMiB)
    failures.push(`RSS grew by ${rssGrowth} MiB after warm-up (limit ${maxRssGrowthMiB})`);
  return { pass: failures.length === 0, failures, totals, statuses, heapGrowth, rssGrowth };
}
