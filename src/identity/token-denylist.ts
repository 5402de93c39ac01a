/**
 * Tokens revoked through this sidecar or a replica (by token hash), each refused until its end.
 *
 * Owned by the sidecar, not by a token runtime: a reload that changes `tokens` builds a new runtime,
 * and its revocations must not go with the old one. Never evicts to make room: an entry dropped
 * before its end is a revoked token accepted again, so a full list refuses the next revocation
 * instead (`add` returns false) and makes room only from entries that have ended.
 */
export const MAX_REVOKED_TOKENS = 100_000;

/**
 * The latest end a revocation has (ms epoch, year 287396): "for ever" for any token. An `exp` far
 * ahead (1e16 s from a hostile IdP, or one in ms) put an end on the list that Redis refused as an
 * expiry (and whose mark's 17+ digits no replica read back); the shared marks hold 16 digits.
 */
export const MAX_REVOCATION_END_MS = Number.MAX_SAFE_INTEGER;

export class TokenDenylist {
  readonly #until = new Map<string, number>();
  readonly #maxEntries: number;

  constructor(maxEntries = MAX_REVOKED_TOKENS) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#until.size;
  }

  /** Whether the token is revoked now; an entry that has ended is dropped. */
  has(hash: string, now = Date.now()): boolean {
    const until = this.#until.get(hash);
    if (until === undefined) return false;
    if (now < until) return true;
    this.#until.delete(hash);
    return false;
  }

  /**
   * Revokes until `untilMs`, at most MAX_REVOCATION_END_MS (a later end wins); false when the list
   * is full of entries still running.
   */
  add(hash: string, end: number, now = Date.now()): boolean {
    const untilMs = Math.min(end, MAX_REVOCATION_END_MS);
    const known = this.#until.get(hash);
    if (known !== undefined) {
      if (untilMs > known) this.#until.set(hash, untilMs);
      return true;
    }
    if (this.#until.size >= this.#maxEntries && this.#sweep(now) === 0) return false;
    this.#until.set(hash, untilMs);
    return true;
  }

  /** The revocations still running, with their ends (ms epoch). */
  *live(now = Date.now()): Generator<[hash: string, untilMs: number]> {
    for (const [hash, until] of this.#until) if (until > now) yield [hash, until];
  }

  /** Drops the entries that have ended; how many. Walks the whole list, so only when it is full. */
  #sweep(now: number): number {
    let dropped = 0;
    for (const [hash, until] of this.#until) {
      if (until <= now) {
        this.#until.delete(hash);
        dropped++;
      }
    }
    return dropped;
  }
}
