/**
 * What OTLP export dropped, by signal and reason: exported as `warden.telemetry.dropped` (otel.ts),
 * served on /metrics as `warden_telemetry_dropped_total` (metrics.ts) and told in a pino warning at
 * most once per `WARN_EVERY_MS`. The last two need no collector: when it is the collector that is
 * slow or down, they are what the operator sees.
 *
 * One per sidecar, kept across the SDK restarts a reload makes, so the counts only grow.
 */

export type DropSignal = 'logs' | 'traces';
/**
 * `queue_full`: no room in the export queue; `export_failed`: the collector refused or could not be
 * reached; `export_timeout`: no answer within `timeout`, the batch given up; `breaker_open`: dropped
 * unsent in the pause after a failed or given-up export (export-breaker.ts).
 */
export type DropReason = 'queue_full' | 'export_failed' | 'export_timeout' | 'breaker_open';

export const DROP_SIGNALS: readonly DropSignal[] = ['logs', 'traces'];
export const DROP_REASONS: readonly DropReason[] = ['queue_full', 'export_failed', 'export_timeout', 'breaker_open'];

export type DropCounts = Record<DropReason, number>;

/** One signal's drops: what a queue or an exporter counts into. */
export interface DropCounter {
  add(reason: DropReason, n: number): void;
}

/** At most one warning line per this long. */
export const WARN_EVERY_MS = 10_000;

const zeros = (): DropCounts => ({ queue_full: 0, export_failed: 0, export_timeout: 0, breaker_open: 0 });

export class TelemetryDrops {
  readonly counts: Readonly<Record<DropSignal, DropCounts>> = { logs: zeros(), traces: zeros() };
  /** The counts the last warning line covered. */
  private readonly warned: Record<DropSignal, DropCounts> = { logs: zeros(), traces: zeros() };
  private timer: NodeJS.Timeout | undefined;
  private lastLineAt = -Infinity;

  /** `warn`: the pino logger's warn; without it (the CA, tests) drops are only counted. */
  constructor(
    private readonly warn?: (fields: object, msg: string) => void,
    private readonly everyMs = WARN_EVERY_MS,
  ) {}

  counter(signal: DropSignal): DropCounter {
    const counts = this.counts[signal];
    return {
      add: (reason, n) => {
        counts[reason] += n;
        // The line is built when it is written, at most once per everyMs, never per drop.
        if (this.timer === undefined && this.warn !== undefined) {
          this.timer = setTimeout(() => this.report(), Math.max(0, this.lastLineAt + this.everyMs - Date.now()));
          this.timer.unref();
        }
      },
    };
  }

  /** Writes the warning line for what was dropped since the last one, if anything was (also at shutdown). */
  report(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.warn === undefined) return;
    const dropped: Partial<Record<DropSignal, Partial<DropCounts>>> = {};
    const totals: Record<DropSignal, number> = { logs: 0, traces: 0 };
    for (const signal of DROP_SIGNALS) {
      for (const reason of DROP_REASONS) {
        const n = this.counts[signal][reason] - this.warned[signal][reason];
        if (n === 0) continue;
        (dropped[signal] ??= {})[reason] = n;
        totals[signal] += n;
        this.warned[signal][reason] = this.counts[signal][reason];
      }
    }
    if (totals.logs + totals.traces === 0) return;
    const now = Date.now();
    const since = this.lastLineAt === -Infinity ? undefined : now - this.lastLineAt;
    this.lastLineAt = now;
    this.warn(
      { dropped, ...(since === undefined ? {} : { since_ms: since }) },
      `telemetry export dropped ${totals.logs} log records and ${totals.traces} spans since ${since === undefined ? 'start' : 'the last such line'} (warden_telemetry_dropped_total)`,
    );
  }
}
