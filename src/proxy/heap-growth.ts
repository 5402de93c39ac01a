/**
 * `limits.heap_growth`: how far V8 lets the old generation grow past what its last full collection
 * found alive before it collects again (V8's --heap-growing-percent). Left to V8 ("auto"), the
 * factor reaches 4 under load: with 320 h2 streams in flight Warden's old space cycled between 67
 * and 107 MiB and the process peaked at 235–249 MiB RSS; at 2, the default, it peaked at 171–175
 * MiB with no throughput difference measurable, the p99 higher in the first seconds under load
 * and by up to 1.9 ms in three of four runs (docs/performance.md, "Memory and V8 flags"). V8
 * reads the flag at each collection, so it is set on the running process: at start, and again on
 * a reload that changes it.
 */
import { setFlagsFromString } from 'node:v8';

export type HeapGrowth = number | 'auto';

/** The V8 flag for a growth factor; "auto" gives the heuristics back to V8 (0 = its own factor). */
function heapGrowthFlag(factor: HeapGrowth): string {
  return `--heap-growing-percent=${factor === 'auto' ? 0 : Math.round((factor - 1) * 100)}`;
}

/** Applies `factor` unless it is what is in force already (`previous`; undefined at start, when V8's own is). */
export function applyHeapGrowth(factor: HeapGrowth, previous: HeapGrowth | undefined): void {
  if (factor !== (previous ?? 'auto')) setFlagsFromString(heapGrowthFlag(factor));
}
