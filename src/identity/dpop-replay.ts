/**
 * The DPoP proofs seen lately (RFC 9449 §11.1): a proof is accepted once. Each key is kept for the
 * whole time its proof could still pass the `iat` check (`max_age` + `clock_skew` after it was
 * seen), so a replay within that window is recognised and one after it is refused by `iat` anyway.
 *
 * Every entry lives the same time, so insertion order is expiry order and ended entries leave from
 * the front. Full means refused, not evicted: dropping a live entry would let its proof be replayed.
 * One process only: replicas do not share it (docs/tokens.md).
 *
 * Each entry counts against its owner (the caller, docs/tokens.md), who may hold at most
 * `perOwner` live entries: one caller sending fresh proofs as fast as it can filled the whole
 * cache and every other DPoP client got 503 for a minute, renewably. Owners are counted only while
 * they hold entries, so there are never more of them than entries.
 */
export type ReplayVerdict = 'fresh' | 'replayed' | 'full' | 'share';

interface Owner {
  readonly id: string;
  held: number;
}

interface Seen {
  readonly until: number;
  readonly owner: Owner;
}

/** A share of the whole cache is no share: full is then the answer (503), not the caller's share (429). */
const shareOf = (maxEntries: number, perOwner: number) => (perOwner < maxEntries ? perOwner : Infinity);

export class ReplayCache {
  readonly #seen = new Map<string, Seen>();
  readonly #owners = new Map<string, Owner>();
  #maxEntries: number;
  #lifeMs: number;
  #perOwner: number;

  constructor(maxEntries: number, lifeMs: number, perOwner = maxEntries) {
    this.#maxEntries = maxEntries;
    this.#lifeMs = lifeMs;
    this.#perOwner = shareOf(maxEntries, perOwner);
  }

  /**
   * New limits, from a reload that changed `tokens`: the proofs seen so far stay (a new cache let
   * each be replayed once). A longer life lengthens theirs; a shorter one does not shorten them.
   */
  configure(maxEntries: number, lifeMs: number, perOwner = maxEntries): void {
    const longer = lifeMs - this.#lifeMs;
    if (longer > 0) for (const [key, seen] of this.#seen) this.#seen.set(key, { until: seen.until + longer, owner: seen.owner });
    this.#maxEntries = maxEntries;
    this.#lifeMs = lifeMs;
    this.#perOwner = shareOf(maxEntries, perOwner);
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Callers holding live entries (bounded by `size`). */
  get owners(): number {
    return this.#owners.size;
  }

  /**
   * Records `key` for `owner` at `now` (ms epoch): 'fresh' the first time within its life,
   * 'replayed' after, 'share' when the owner already holds its share, 'full' when no room is left.
   */
  remember(key: string, now: number, owner = ''): ReplayVerdict {
    for (const [k, seen] of this.#seen) {
      if (seen.until > now) break;
      this.#seen.delete(k);
      if (--seen.owner.held === 0) this.#owners.delete(seen.owner.id);
    }
    if (this.#seen.has(key)) return 'replayed';
    let held = this.#owners.get(owner);
    // The caller's own share before the whole: a flooder is told it is the one over, and the
    // others are refused only when the cache is full of many callers' proofs.
    if (held !== undefined && held.held >= this.#perOwner) return 'share';
    if (this.#seen.size >= this.#maxEntries) return 'full';
    if (held === undefined) this.#owners.set(owner, (held = { id: owner, held: 0 }));
    held.held++;
    this.#seen.set(key, { until: now + this.#lifeMs, owner: held });
    return 'fresh';
  }
}
