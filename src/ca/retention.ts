/**
 * Expired rows leave the CA's ledger `database.keep_expired` after they expire: certificates never
 * revoked, and bootstrap tokens. Every row used to stay for ever: a CA issuing 15-minute certificates
 * to 100 replicas added ~14 000 rows a day (each with its PEM), without end, to a database every enrollment
 * writes to and every backup copies. Revoked certificates stay (their revocation and the key a
 * keyCompromise refuses again are in them), and so does the audit log.
 *
 * Deletes go in batches, one transaction each, with a pause between them: a first run over a
 * years-old database must not hold enrollments (or another CA sharing the database) up for all of it.
 */
import type { Logger } from '../telemetry/logger.js';
import type { CaStore } from './store.js';

/** How often the ledger is looked through. */
export const PRUNE_INTERVAL_MS = 60 * 60_000;
/** Rows per transaction. */
const BATCH = 500;

export interface PruneCounts {
  certificates: number;
  tokens: number;
}

export interface Retention {
  /** One pass now (the timer's work); resolves with what went. Undefined once stopped. */
  pruneNow(): Promise<PruneCounts | undefined>;
  /** No batch starts after this (the database is about to close). */
  stop(): void;
}

export interface RetentionOptions {
  keepMs: number;
  logger: Logger;
  /**
   * The newest time the database recorded before this process wrote to it (CaStore.newestRecord,
   * read at open), for a database no pass has marked yet. "Now" is never taken later than the last
   * pass's time (or this) plus twice the time this process has run (monotonic): started once with
   * its clock 40 days ahead, the CA deleted every live certificate and unused token, irreversibly
   * (renewals then failed as unknown, a leaked certificate could no longer be revoked). A CA
   * stopped a long while prunes late, never wrongly.
   */
  newestRecord?: number | undefined;
  now?: () => number;
  /** Monotonic ms (performance.now), for the time this process has run. */
  monotonic?: () => number;
  intervalMs?: number;
}

/** Between batches: long enough for another process's writer (a second CA on the database during a root rotation) to get the lock. */
const BATCH_PAUSE_MS = 20;

/**
 * How much faster than this process runs the trusted time may catch up with the clock: a CA down
 * for a while prunes late, and catches up within as long again; a clock ahead is not believed
 * before the process has run half its lead.
 */
const CATCH_UP = 2;

export function startRetention(
  store: Pick<CaStore, 'pruneExpired' | 'audit' | 'retentionMark' | 'setRetentionMark'>,
  options: RetentionOptions,
): Retention {
  const now = options.now ?? Date.now;
  const monotonic = options.monotonic ?? (() => performance.now());
  const startedAt = monotonic();
  let stopped = false;
  let running: Promise<PruneCounts | undefined> | undefined;

  // What the last pass went by (kept in the database: rows this process writes carry its own clock,
  // so after a restart still ahead they would vouch for it), else what the database saw last.
  const base = store.retentionMark() ?? options.newestRecord;
  /** The time pruning goes by: the clock, unless it is ahead of what the database has seen. */
  const trustedNow = () => {
    const clock = now();
    if (base === undefined) return clock;
    return Math.min(clock, base + CATCH_UP * (monotonic() - startedAt));
  };

  /** One audit row and one log line for what went, also when a pass ended early (stopped, or a batch failed). */
  const account = (total: PruneCounts, before: number, ended?: string) => {
    if (total.certificates + total.tokens === 0) return;
    const expiredBefore = new Date(before).toISOString();
    store.audit({
      action: 'database.prune',
      actor: 'warden-ca',
      outcome: 'ok',
      detail: `${total.certificates} certificates and ${total.tokens} bootstrap tokens expired before ${expiredBefore}${ended === undefined ? '' : ` (${ended})`}`,
    });
    options.logger.info({ ...total, expired_before: expiredBefore }, 'expired ledger rows pruned (database.keep_expired)');
  };

  /** The pass under way, for stop() to account for (the database closes right after it). */
  let underWay: { total: PruneCounts; before: number } | undefined;

  const pass = async (): Promise<PruneCounts | undefined> => {
    const trusted = trustedNow();
    store.setRetentionMark(trusted);
    const before = trusted - options.keepMs;
    const total: PruneCounts = { certificates: 0, tokens: 0 };
    underWay = { total, before };
    for (;;) {
      if (stopped) return undefined; // accounted for by stop()
      let went: PruneCounts;
      try {
        went = store.pruneExpired(before, BATCH);
      } catch (err) {
        underWay = undefined;
        account(total, before, 'a batch failed; the rest at the next pass');
        throw err;
      }
      total.certificates += went.certificates;
      total.tokens += went.tokens;
      if (went.certificates < BATCH && went.tokens < BATCH) break;
      await new Promise<void>((resolve) => setTimeout(resolve, BATCH_PAUSE_MS));
    }
    underWay = undefined;
    account(total, before);
    return total;
  };

  const pruneNow = () => {
    running ??= pass()
      .catch((err: unknown) => {
        // A locked or full database: the rows stay until the next pass; nothing else depends on them going.
        options.logger.warn({ err }, 'expired ledger rows could not be pruned; trying again in an hour');
        return undefined;
      })
      .finally(() => (running = undefined));
    return running;
  };

  const first = setTimeout(() => void pruneNow(), 0);
  const timer = setInterval(() => void pruneNow(), options.intervalMs ?? PRUNE_INTERVAL_MS);
  first.unref();
  timer.unref();
  return {
    pruneNow,
    stop() {
      stopped = true;
      if (underWay !== undefined) account(underWay.total, underWay.before, 'stopped before the end; the rest at the next start');
      underWay = undefined;
      clearTimeout(first);
      clearInterval(timer);
    },
  };
}
