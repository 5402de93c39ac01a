/**
 * Buckets this sidecar has found empty, and until when: what lets a rate limit that runs after
 * authentication refuse an address's requests before the IdP is asked, with a Map lookup instead
 * of a store round trip (Redis) on every request. Filled only by failed authentications, so empty
 * — and skipped — while nobody is failing. Bounded like the memory store: past `maxKeys`, the
 * entry remembered longest ago goes.
 *
 * Beside it, the address's authentications in flight that cost an IdP call (reservations): one is
 * taken only while fewer are in flight than the address's bucket has tokens left (as its last
 * charge here found it), so a wave of concurrent junk tokens costs at most what the bucket holds.
 * Before, every stream of a wave passed the refusal check at once (the bucket was not empty yet,
 * or its refusal had just run out) and each wave got idp.max_concurrent introspections.
 */
import { EPSILON_MS, type Bucket } from './gcra.js';

export interface Refusal {
  /** When a request may pass again (its Retry-After), on the caller's monotonic clock (performance.now()). */
  readonly retryAt: number;
  /** When the bucket is full again (RateLimit's `t`), on the same clock. */
  readonly resetAt: number;
}

export interface RefusalMemo {
  /** The refusal in force for this bucket, if any (an expired one is forgotten). */
  get(key: string, now: number): Refusal | undefined;
  remember(key: string, refusal: Refusal): void;
  readonly size: number;
  /**
   * Reserves one of the bucket's tokens for an IdP call in flight, for an address with a failure in
   * effect: 0 when taken; UNRESERVED (nothing held) when it has none; otherwise the reservations in
   * flight hold every token left, and this is the ms until one more would be.
   */
  reserve(key: string, bucket: Bucket, now: number): number;
  /** The reserved call ended. */
  release(key: string, now: number): void;
  /** A charge found the bucket full again at `resetAt`: what later reservations count from. */
  charged(key: string, now: number, resetAt: number): void;
  /** Reservations in flight, all keys (for tests). */
  readonly reserved: number;
}

/** `reserve`: the address has no failure in effect, so its call is not held (nor counted). */
export const UNRESERVED = -1;

/**
 * How long after an address's bucket is full again its calls are still held (to the full bucket).
 * Forgotten as soon as it refilled, each wave of junk timed to the refill was a first wave again:
 * idp.max_concurrent calls every 5 s against a bucket of 5 + 1/s (192 in 15 s).
 */
export const PROBATION_MS = 60_000;

interface Ledger {
  inflight: number;
  /** When the bucket is full again, as its last charge here found it (the caller's clock). */
  resetAt: number;
}

export function createRefusalMemo(maxKeys: number): RefusalMemo {
  const refusals = new Map<string, Refusal>();
  const ledgers = new Map<string, Ledger>();
  const addLedger = (key: string, now: number): Ledger => {
    const ledger = { inflight: 0, resetAt: now };
    ledgers.set(key, ledger);
    if (ledgers.size > maxKeys) {
      const oldest = ledgers.keys().next().value as string;
      ledgers.delete(oldest);
    }
    return ledger;
  };
  return {
    get size() {
      return refusals.size;
    },
    get reserved() {
      // Summed when asked (tests), not kept beside the ledgers by hand.
      let n = 0;
      for (const ledger of ledgers.values()) n += ledger.inflight;
      return n;
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
    reserve(key, bucket, now) {
      const ledger = ledgers.get(key);
      // No failure of this address in effect (its ledger is made by a charge): nothing is held.
      // Held from the first call, valid callers behind one NAT address used each other's burst up
      // by succeeding (10 new valid tokens at once against a burst of 5: five 429s).
      if (ledger === undefined) return UNRESERVED;
      if (ledger.inflight === 0 && ledger.resetAt + PROBATION_MS <= now) {
        ledgers.delete(key); // its bucket full again for a while: the failures are over
        return UNRESERVED;
      }
      const inflight = ledger.inflight;
      const aheadMs = Math.max(0, ledger.resetAt - now);
      const perRequest = bucket.interval * bucket.cost;
      // GCRA: a request passes while the TAT after it is at most burstOffset ahead of now.
      const waitMs = aheadMs + (inflight + 1) * perRequest - bucket.burstOffset;
      if (waitMs > EPSILON_MS) return waitMs;
      ledger.inflight++;
      return 0;
    },
    release(key, now) {
      const ledger = ledgers.get(key);
      // Pushed out past maxKeys (and perhaps made again by a charge since): nothing of it to give back.
      if (ledger === undefined || ledger.inflight === 0) return;
      ledger.inflight--;
      if (ledger.inflight === 0 && ledger.resetAt + PROBATION_MS <= now) ledgers.delete(key);
    },
    charged(key, now, resetAt) {
      const ledger = ledgers.get(key);
      if (ledger !== undefined) ledger.resetAt = resetAt;
      else if (resetAt > now) addLedger(key, now).resetAt = resetAt;
    },
  };
}
