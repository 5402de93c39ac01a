/**
 * Rate-limit state in this process: a TAT per key, bounded by `maxKeys`. Keys whose bucket is full
 * again carry no information and are dropped first; past the bound the oldest keys go (a client
 * whose state is dropped gets a full bucket — the bound protects memory from key floods).
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

export function createMemoryLimiter(maxKeys: number, now: () => number = Date.now): Limiter & { readonly size: number } {
  const tats = new Map<string, number>();
  const sweep = (t: number) => {
    for (const [k, tat] of tats) if (tat <= t) tats.delete(k);
    for (const k of tats.keys()) {
      if (tats.size <= maxKeys) break;
      tats.delete(k);
    }
  };
  return {
    get size() {
      return tats.size;
    },
    take(key, bucket) {
      const t = now();
      const { decision, tat } = gcra(bucket, tats.get(key) ?? 0, t);
      if (tat !== undefined) {
        tats.set(key, tat);
        if (tats.size > maxKeys) sweep(t);
      }
      return decision;
    },
    close: async () => undefined,
  };
}
