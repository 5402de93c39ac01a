/**
 * Expired rows leave the CA's ledger `database.keep_expired` after they expire: certificates never
 * revoked, and bootstrap tokens. Every row used to stay for ever: a CA issuing 15-minute certificates
 * to 100 replicas added ~14 000 rows a day (each with its PEM), without end, to a database every enrollment
 * writes to and every backup copies. Revoked certificates stay (their revocation and the key a
 * keyCompromise refuses again are in them), and so does the audit log.
 *
 * Deletes go in batches, one transaction each, with the event loop let through between them: a first
 * run over a years-old database must not hold enrollments up for the whole of it.
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
  now?: () => number;
  intervalMs?: number;
}

export function startRetention(store: Pick<CaStore, 'pruneExpired' | 'audit'>, options: RetentionOptions): Retention {
  const now = options.now ?? Date.now;
  let stopped = false;
  let running: Promise<PruneCounts | undefined> | undefined;

  const pass = async (): Promise<PruneCounts | undefined> => {
    const before = now() - options.keepMs;
    const total: PruneCounts = { certificates: 0, tokens: 0 };
    for (;;) {
      if (stopped) return undefined;
      const went = store.pruneExpired(before, BATCH);
      total.certificates += went.certificates;
      total.tokens += went.tokens;
      if (went.certificates < BATCH && went.tokens < BATCH) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (total.certificates + total.tokens > 0) {
      const expiredBefore = new Date(before).toISOString();
      store.audit({
        action: 'database.prune',
        actor: 'warden-ca',
        outcome: 'ok',
        detail: `${total.certificates} certificates and ${total.tokens} bootstrap tokens expired before ${expiredBefore}`,
      });
      options.logger.info({ ...total, expired_before: expiredBefore }, 'expired ledger rows pruned (database.keep_expired)');
    }
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
      clearTimeout(first);
      clearInterval(timer);
    },
  };
}
