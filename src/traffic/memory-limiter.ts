/**
 * Rate-limit state in this process: a TAT per key, bounded by `maxKeys`. The Map is kept in
 * least-recently-used order (a key taken, allowed or refused, moves to the back), so past the bound
 * the client seen longest ago goes, in O(1): a full sweep per new key cost a flood of identities
 * 0.67 ms of CPU each at 100 000 keys. Keys whose bucket is full again carry no information: those at
 * the front go too, a few per new key. A client whose state is dropped gets a full bucket — the
 * bound protects memory from key floods; an active client is dropped only if more than `maxKeys`
 * other keys arrive between two of its requests.
 */
import type { SpanParent } from '../telemetry/client-span.js';
import { gcra, type Bucket, type Decision } from './gcra.js';

/** The request a take is for: the parent of a limiter's call (Redis), and whose id a store-failure event carries. */
export interface TakeRequest {
  readonly requestId: string;
  readonly traceContext: SpanParent;
}

export interface Limiter {
  take(key: string, bucket: Bucket, request?: TakeRequest): Decision | Promise<Decision>;
  close(): Promise<void>;
}

/** Expired keys dropped, at most, per new key past the bound: a constant, so no insert is a sweep. */
const EXPIRED_PER_EVICTION = 16;

/** Decided at once, in this process. */
export interface MemoryLimiter extends Limiter {
  take(key: string, bucket: Bucket): Decision;
  readonly size: number;
}

export function createMemoryLimiter(maxKeys: number, now: () => number = Date.now): MemoryLimiter {
  const tats = new Map<string, number>();
  /** From the front (least recently used): drop until within the bound, plus expired keys met on the way. */
  const evict = (t: number) => {
    let expired = 0;
    for (const [k, tat] of tats) {
      const over = tats.size > maxKeys;
      if (!over && (tat > t || expired >= EXPIRED_PER_EVICTION)) break;
      if (!over) expired++;
      tats.delete(k);
    }
  };
  return {
    get size() {
      return tats.size;
    },
    take(key, bucket) {
      const t = now();
      const stored = tats.get(key);
      const { decision, tat } = gcra(bucket, stored ?? 0, t);
      const next = tat ?? stored;
      if (next !== undefined) {
        // To the back, also when refused: a client over its limit must not be the first evicted.
        tats.delete(key);
        tats.set(key, next);
        if (tats.size > maxKeys) evict(t);
      }
      return decision;
    },
    close: async () => undefined,
  };
}
