// Types for bench/soak-verdict.js, so test/unit/bench can check it.
export interface SoakWindow {
  t: number;
  seconds: number;
  completed: number;
  ok: number;
  errors: number;
  overload: number;
  statuses: Record<string, number>;
}
export interface MemorySample {
  t: number;
  rss_mib: number;
  heap_mib: number | undefined;
}
export function memoryGrowth(memory: MemorySample[], key: 'heap_mib' | 'rss_mib', seconds: number): number | undefined;
export function soakVerdict(o: {
  windows: SoakWindow[];
  memory: MemorySample[];
  summary: { sent: number; unanswered: number };
  seconds: number;
  maxHeapGrowthMiB: number;
  maxRssGrowthMiB: number;
}): {
  pass: boolean;
  failures: string[];
  totals: { completed: number; ok: number; errors: number; overload: number };
  statuses: Record<string, number>;
  heapGrowth: number | undefined;
  rssGrowth: number | undefined;
};
