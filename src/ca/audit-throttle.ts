/**
 * Audit rows for refusals of anonymous requests (enrollment, unknown callers), aggregated: per
 * client address, action, subject (the identity a known token names) and refusal, the first in an
 * interval is written at once and the rest as one row with their number when the interval ends. 2 000 made-up tokens wrote 2 000 rows in a
 * second, without bound, until a full disk made every enrollment 503. Authenticated callers are
 * audited row by row, elsewhere.
 */
import type { AuditEntry } from './store.js';

export interface RefusalAudit {
  /** Records an anonymous refusal from `clientAddress`. */
  refused(entry: AuditEntry, clientAddress: string): void;
  /** Writes the counts still pending and stops the timer (before the database closes). */
  close(): void;
}

/** Distinct (address, action, subject, refusal) kept per interval; past it, new addresses are counted together. */
const MAX_KEYS = 4096;

export function createRefusalAudit(write: (entry: AuditEntry) => void, intervalMs: number): RefusalAudit {
  const windows = new Map<string, { entry: AuditEntry; from: string; more: number }>();
  const flush = () => {
    for (const [key, window] of windows) {
      if (window.more === 0) {
        windows.delete(key); // quiet for an interval: the next refusal is written at once again
        continue;
      }
      write({
        ...window.entry,
        detail: `${window.entry.detail ?? ''}: ${window.more} more from ${window.from} within ${intervalMs / 1000} s`,
      });
      window.more = 0;
    }
  };
  const timer = setInterval(flush, intervalMs).unref();
  return {
    refused(entry, clientAddress) {
      let from = clientAddress || 'unknown';
      // A refusal naming a known token's identity keeps a row of its own: it is about that workload.
      const what = `${entry.action}\n${entry.subject ?? ''}\n${entry.detail ?? ''}`;
      let key = `${from}\n${what}`;
      if (!windows.has(key) && windows.size >= MAX_KEYS) {
        from = 'other addresses';
        key = `*\n${what}`;
      }
      const window = windows.get(key);
      if (window) {
        window.more++;
        return;
      }
      windows.set(key, { entry, from, more: 0 });
      write(entry);
    },
    close() {
      clearInterval(timer);
      flush();
    },
  };
}
