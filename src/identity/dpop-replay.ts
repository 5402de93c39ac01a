/**
 * The DPoP proofs seen lately (RFC 9449 §11.1): a proof is accepted once. Each key is kept for the
 * whole time its proof could still pass the `iat` check (`max_age` + `clock_skew` after it was
 * seen), so a replay within that window is recognised and one after it is refused by `iat` anyway.
 *
 * Every entry lives the same time, so insertion order is expiry order and ended entries leave from
 * the front. Full means refused, not evicted: dropping a live entry would let its proof be replayed.
 * One process only: replicas do not share it (docs/tokens.md).
 */
export type ReplayVerdict = 'fresh' | 'replayed' | 'full';

export class ReplayCache {
  readonly #seen = new Map<string, number>();
  #maxEntries: number;
  #lifeMs: number;

  constructor(maxEntries: number, lifeMs: number) {
    this.#maxEntries = maxEntries;
    this.#lifeMs = lifeMs;
  }

  /**
   * New limits, from a reload that changed `tokens`: the proofs seen so far stay (a new cache let
   * each be replayed once). A longer life lengthens theirs; a shorter one does not shorten them.
   */
  configure(maxEntries: number, lifeMs: number): void {
    const longer = lifeMs - this.#lifeMs;
    if (longer > 0) for (const [key, until] of this.#seen) this.#seen.set(key, until + longer);
    this.#maxEntries = maxEntries;
    this.#lifeMs = lifeMs;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Records `key` at `now` (ms epoch): 'fresh' the first time within its life, 'replayed' after, 'full' when no room is left. */
  remember(key: string, now: number): ReplayVerdict {
    for (const [k, until] of this.#seen) {
      if (until > now) break;
      this.#seen.delete(k);
    }
    if (this.#seen.has(key)) return 'replayed';
    if (this.#seen.size >= this.#maxEntries) return 'full';
    this.#seen.set(key, now + this.#lifeMs);
    return 'fresh';
  }
}
