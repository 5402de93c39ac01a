/**
 * Buckets this sidecar has found empty, and until when: what lets a rate limit that runs after
 * authentication refuse an address's requests before the IdP is asked, with a Map lookup instead
 * of a store round trip (Redis) on every request. Filled only by failed authentications, so empty
 * — and skipped — while nobody is failing. Bounded like the memory store: past `maxKeys`, the
 * entry remembered longest ago goes.
 */

export interface Refusal {
  /** Date.now() when a request may pass again (its Retry-After). */
  readonly retryAt: number;
  /** Date.now() when the bucket is full again (RateLimit's `t`). */
  readonly resetAt: number;
}

export interface RefusalMemo {
  /** The refusal in force for this bucket, if any (an expired one is forgotten). */
  get(key: string, now: number): Refusal | undefined;
  remember(key: string, refusal: Refusal): void;
  readonly size: number;
}

export function createRefusalMemo(maxKeys: number): RefusalMemo {
  const refusals = new Map<string, Refusal>();
  return {
    get size() {
      return refusals.size;
    },
    get(key, now) {
      if (refusals.size === 0) return undefined;
      const refusal = refusals.get(key);
      if (refusal === undefined || refusal.retryAt > now) return refusal;
      refusals.delete(key);
      return undefined;
    },
    remember(key, refusal) {
      refusals.delete(key);
      refusals.set(key, refusal);
      if (refusals.size > maxKeys) refusals.delete(refusals.keys().next().value as string);
    },
  };
}
