/**
 * A bounded cache for token-derived results: at most `maxEntries` entries and `maxBytes` estimated
 * bytes, least recently used evicted first. Each entry has a fixed life set when it is stored — a hit
 * never extends it — with an optional stale window after it (served only when the source of truth
 * cannot be asked).
 */

export interface CacheEntry<V> {
  readonly value: V;
  readonly bytes: number;
  /** ms epoch until which the entry is served without asking anyone. */
  readonly freshUntil: number;
  /** ms epoch until which the entry may still be served when the source cannot be asked (≥ freshUntil). */
  readonly staleUntil: number;
  /** ms epoch of the last move to the recent end. */
  touchedAt: number;
}

const TOUCH_INTERVAL_MS = 1000;

export interface BoundedCacheOptions {
  maxEntries: number;
  maxBytes: number;
  now?: () => number;
}

export class BoundedCache<V> {
  readonly #map = new Map<string, CacheEntry<V>>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  #bytes = 0;

  constructor(options: BoundedCacheOptions) {
    this.#maxEntries = options.maxEntries;
    this.#maxBytes = options.maxBytes;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#map.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The entry while it may be served at all (fresh or stale); expired entries are dropped. */
  get(key: string, now = this.#now()): CacheEntry<V> | undefined {
    const entry = this.#map.get(key);
    if (entry === undefined) return undefined;
    if (now >= entry.staleUntil) {
      this.delete(key);
      return undefined;
    }
    // Most recently used goes last; eviction takes from the front. A hot entry is moved at most
    // once per second: re-inserting on every hit costs more than the recency it buys.
    if (now - entry.touchedAt >= TOUCH_INTERVAL_MS) {
      entry.touchedAt = now;
      this.#map.delete(key);
      this.#map.set(key, entry);
    }
    return entry;
  }

  set(key: string, value: V, bytes: number, freshUntil: number, staleUntil = freshUntil): void {
    if (bytes > this.#maxBytes || staleUntil <= this.#now()) return;
    this.delete(key);
    this.#map.set(key, { value, bytes, freshUntil, staleUntil: Math.max(freshUntil, staleUntil), touchedAt: this.#now() });
    this.#bytes += bytes;
    while (this.#map.size > this.#maxEntries || this.#bytes > this.#maxBytes) {
      const oldest = this.#map.keys().next().value as string;
      this.delete(oldest);
    }
  }

  delete(key: string): boolean {
    const entry = this.#map.get(key);
    if (entry === undefined) return false;
    this.#map.delete(key);
    this.#bytes -= entry.bytes;
    return true;
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }
}
