/**
 * Request body bytes held in memory at once, over every request (limits.max_buffered_bytes): the
 * bodies read whole for the body stages, and the part of a spooled body kept in memory. Each body
 * is bounded by max_body_bytes, but nothing bounded how many were read at once: forty 9 MiB JSON
 * bodies on one h2 connection ran a sidecar with a 192 MiB heap out of memory. A body that would
 * take the total past the limit is refused with 503 (Retry-After), before it is read when its
 * Content-Length says so, and the process stays within its memory.
 */
import { WardenError } from '../errors.js';

/** One request's share: takes bytes while they fit, gives all of them back at once, and takes none after. */
export interface BodyLease {
  take(bytes: number): boolean;
  /** Whether this request's body, with `bytes` more, is larger than the whole limit: it can never fit. */
  exceedsAlone(bytes: number): boolean;
  /** Gives back `bytes` of this request's share (no more than it holds): a copy no longer held. */
  giveBack(bytes: number): void;
  release(): void;
}

export interface BodyBudget {
  /** A lease against `limit` (the current generation's max_buffered_bytes). */
  lease(limit: number): BodyLease;
  /** Bytes held now. */
  readonly held: number;
}

export function createBodyBudget(): BodyBudget {
  const total = { held: 0 };
  return {
    get held() {
      return total.held;
    },
    lease: (limit) => new Lease(total, limit),
  };
}

/** One object per request with a body held (no closures): the shared total, the limit, its own bytes. */
class Lease implements BodyLease {
  private mine = 0;
  /**
   * Released: its request is over, and nothing more is taken for it. A decode still running when its
   * client left took on after the release, for good: eight cancelled 1.5 MB gzip bodies of 9.5 MB
   * each left a 40 MiB budget refusing 2 MB bodies until a restart. Its next take fails, which also
   * stops that decode.
   */
  private released = false;

  constructor(
    private readonly total: { held: number },
    private readonly limit: number,
  ) {}

  exceedsAlone(bytes: number): boolean {
    return this.mine + bytes > this.limit;
  }

  take(bytes: number): boolean {
    if (this.released || this.total.held + bytes > this.limit) return false;
    this.total.held += bytes;
    this.mine += bytes;
    return true;
  }

  giveBack(bytes: number): void {
    const given = Math.min(bytes, this.mine);
    this.total.held -= given;
    this.mine -= given;
  }

  release(): void {
    this.released = true;
    this.total.held -= this.mine;
    this.mine = 0;
  }
}

/**
 * A body that does not fit: 503 with Retry-After while other bodies hold the budget, 413 when it is
 * larger than the whole budget (a route that streams big uploads may allow more than is ever buffered).
 */
export const bodyBudgetExceeded = (lease: BodyLease, bytes: number): WardenError =>
  lease.exceedsAlone(bytes)
    ? new WardenError('ERR_BODY_TOO_LARGE', {
        rule: 'limits.max_buffered_bytes',
        detail: 'The body is larger than the sidecar holds in memory for the stages that read it.',
      })
    : new WardenError('ERR_OVERLOADED', {
        rule: 'limits.max_buffered_bytes',
        detail: 'The sidecar holds as many request bodies as it may; try again shortly.',
        headers: { 'retry-after': '1' },
      });
