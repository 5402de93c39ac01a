/**
 * Token buckets as GCRA (the generic cell rate algorithm): one number per key — the theoretical
 * arrival time (TAT) — instead of a token count and a timestamp, so the memory and Redis stores
 * keep the same state and make the same decision. `rate` tokens per `per` ms refill a bucket of
 * `burst`; a request takes `cost`.
 */

export interface Bucket {
  /** ms per token (per / rate). */
  readonly interval: number;
  /** interval × burst: how far ahead of now the TAT may run. */
  readonly burstOffset: number;
  readonly burst: number;
  readonly cost: number;
  /** For RateLimit-Policy: quota per window. */
  readonly rate: number;
  readonly perMs: number;
}

export function bucketOf(cfg: { rate: number; per?: number | undefined; burst?: number | undefined; cost?: number | undefined }): Bucket {
  const perMs = cfg.per ?? 1000;
  const interval = perMs / cfg.rate;
  const burst = cfg.burst ?? cfg.rate;
  return Object.freeze({ interval, burstOffset: interval * burst, burst, cost: cfg.cost ?? 1, rate: cfg.rate, perMs });
}

/**
 * Tolerance for the float arithmetic on epoch milliseconds (~1.7e12, where a double's step is
 * ~0.0002 ms): `interval × burst` and `interval` added `burst` times differ in their last bits, which
 * refused the last request of a full burst (a 6/s bucket admitted 5 at once) and under-reported what
 * is left. 10 µs early is not a measurable leniency.
 */
export const EPSILON_MS = 0.01;

export interface Decision {
  readonly allowed: boolean;
  /** Tokens left after this request (0 when refused). */
  readonly remaining: number;
  /** ms until a refused request could pass; 0 when allowed. */
  readonly retryAfterMs: number;
  /** ms until the bucket is full again. */
  readonly resetMs: number;
}

/**
 * The decision and the TAT to store (undefined when nothing changes: a refusal). A stored TAT is at
 * most `burstOffset` ahead of the clock under the settings that stored it; one further ahead was
 * stored under others (a reload that raised the rate, or a replica of the old settings sharing the
 * Redis buckets) and is taken as an empty bucket of these, stored so even when refused: 1 request
 * an hour, then 100 a second, refused the client for the rest of the hour (Retry-After 3599 beside
 * a 1 s policy).
 */
export function gcra(bucket: Bucket, storedTat: number, now: number): { decision: Decision; tat: number | undefined } {
  // An allowed TAT may run up to EPSILON_MS past burstOffset (the float tolerance below).
  const capped = storedTat > now + bucket.burstOffset + EPSILON_MS;
  const tat = capped ? now + bucket.burstOffset : Math.max(storedTat, now);
  const newTat = tat + bucket.interval * bucket.cost;
  const allowAt = newTat - bucket.burstOffset;
  if (now < allowAt - EPSILON_MS) {
    return { decision: { allowed: false, remaining: 0, retryAfterMs: allowAt - now, resetMs: tat - now }, tat: capped ? tat : undefined };
  }
  return { decision: decisionAfter(bucket, newTat - now), tat: newTat };
}

/** An allowed request's decision from how far the TAT now runs ahead of the clock. */
export function decisionAfter(bucket: Bucket, aheadMs: number): Decision {
  const remaining = Math.max(0, Math.floor((bucket.burstOffset - aheadMs + EPSILON_MS) / bucket.interval));
  return { allowed: true, remaining, retryAfterMs: 0, resetMs: aheadMs };
}
