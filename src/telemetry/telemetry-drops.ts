/**
 * What OTLP export dropped, by signal and reason: exported as `warden.telemetry.dropped` (otel.ts),
 * served on /metrics as `warden_telemetry_dropped_total` (metrics.ts) and told in a pino warning at
 * most once per `WARN_EVERY_MS`. The last two need no collector: when it is the collector that is
 * slow or down, they are what the operator sees.
 *
 * One per sidecar, kept across the SDK restarts a reload makes, so the counts only grow.
 */

/** `metrics`: data points, which are not queued: only a collector's rejection of them is counted. */
export type DropSignal = 'logs' | 'traces' | 'metrics';
/**
 * `queue_full`: no room in the export queue; `export_failed`: the collector refused or could not be
 * reached; `export_timeout`: no answer within `timeout`, the batch given up; `breaker_open`: dropped
 * unsent in the pause after a failed or given-up export (export-breaker.ts); `collector_rejected`:
 * the collector took the export but said in its `partial_success` that it rejected these
 * (rejection-counting.ts).
 */
export type DropReason = 'queue_full' | 'export_failed' | 'export_timeout' | 'breaker_open' | 'collector_rejected';

const SIGNALS: readonly DropSignal[] = ['logs', 'traces', 'metrics'];
const REASONS: readonly DropReason[] = ['queue_full', 'export_failed', 'export_timeout', 'breaker_open', 'collector_rejected'];
/** The series counted: every reason for logs and spans, the collector's rejections for metrics. */
export const DROP_SERIES: readonly (readonly [DropSignal, DropReason])[] = [
  ...(['logs', 'traces'] as const).flatMap((signal) => REASONS.map((reason) => [signal, reason] as const)),
  ['metrics', 'collector_rejected'],
];

export type DropCounts = Record<DropReason, number>;

/** One signal's drops: what a queue or an exporter counts into. */
export interface DropCounter {
  add(reason: DropReason, n: number): void;
}

/** At most one warning line per this long. */
export const WARN_EVERY_MS = 10_000;

const zeros = (): DropCounts => ({ queue_full: 0, export_failed: 0, export_timeout: 0, breaker_open: 0, collector_rejected: 0 });
const NOUNS: Record<DropSignal, string> = { logs: 'log records', traces: 'spans', metrics: 'metric data points' };

export class TelemetryDrops {
  readonly counts: Readonly<Record<DropSignal, DropCounts>> = { logs: zeros(), traces: zeros(), metrics: zeros() };
  /** The counts the last warning line covered. */
  private readonly warned: Record<DropSignal, DropCounts> = { logs: zeros(), traces: zeros(), metrics: zeros() };
  /** The collector's last message with a rejection, by signal, since the last line (bounded: partial-success.ts). */
  private said: Partial<Record<DropSignal, string>> = {};
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

  /** What a collector's partial success rejected of `signal`'s exports: counted, its message told in the next line. */
  rejectedBy(signal: DropSignal): (n: number, message: string) => void {
    const counter = this.counter(signal);
    return (n, message) => {
      this.said[signal] = message;
      counter.add('collector_rejected', n);
    };
  }

  /** Writes the warning line for what was dropped since the last one, if anything was (also at shutdown). */
  report(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.warn === undefined) return;
    const dropped: Partial<Record<DropSignal, Partial<DropCounts>>> = {};
    const totals: Record<DropSignal, number> = { logs: 0, traces: 0, metrics: 0 };
    for (const signal of SIGNALS) {
      for (const reason of REASONS) {
        const n = this.counts[signal][reason] - this.warned[signal][reason];
        if (n === 0) continue;
        (dropped[signal] ??= {})[reason] = n;
        totals[signal] += n;
        this.warned[signal][reason] = this.counts[signal][reason];
      }
    }
    const said = this.said;
    this.said = {};
    if (totals.logs + totals.traces + totals.metrics === 0) return;
    const now = Date.now();
    const since = this.lastLineAt === -Infinity ? undefined : now - this.lastLineAt;
    this.lastLineAt = now;
    const points = totals.metrics === 0 ? '' : ` and ${totals.metrics} ${NOUNS.metrics}`;
    const rejected = SIGNALS.filter((signal) => said[signal] !== undefined);
    this.warn(
      {
        dropped,
        ...(since === undefined ? {} : { since_ms: since }),
        ...(rejected.length === 0 ? {} : { collector_message: said }),
      },
      `telemetry export dropped ${totals.logs} log records and ${totals.traces} spans${points} since ${since === undefined ? 'start' : 'the last such line'}` +
        `${rejected.length === 0 ? '' : `, the collector rejecting ${rejected.map((s) => NOUNS[s]).join(', ')} (partial success)`} (warden_telemetry_dropped_total)`,
    );
  }
}
