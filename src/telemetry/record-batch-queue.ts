/**
 * The export queue of log records (security events) and of the SDK's spans (and, with OTLP/JSON,
 * request spans), in place of the SDK's batch processors. The same limits as theirs: at most
 * `maxQueueSize` records waiting, a batch sent when it holds `maxExportBatchSize` or
 * `scheduledDelayMillis` after the first record waiting, one export at a time.
 *
 * Why not the SDK's: a full queue there drops into its self-observability meter, a no-op unless an
 * experimental option is set, so a flood of refusals lost thousands of security events with
 * `warden.telemetry.dropped` at 0 (docs/adversarial.md). Here every record dropped is counted,
 * with why (telemetry-drops.ts), and an export is given up at its deadline (export-deadline.ts).
 * And a queue more than half full can fold a flood's records (`Folding`, log-fold.ts).
 */
import type { DropCounter } from './telemetry-drops.js';
import { exportWithDeadline, type DeadlineExporter } from './export-deadline.js';

export interface RecordExporter<T> extends DeadlineExporter<T[]> {
  shutdown(): Promise<void>;
}

export interface RecordBatchLimits {
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduledDelayMillis: number;
  /** An export not answered by then is given up: its records are counted as dropped and the next batch goes. */
  readonly exportTimeoutMillis: number;
}

/** Asked only while the queue is at least half full. */
export interface Folding<T> {
  /** Whether `record` was folded into one waiting (so not queued). */
  fold(record: T): boolean;
  /** `record` was queued while the queue was at least half full: records like it may fold into it. */
  hold(record: T): void;
  /** Called with each batch as it leaves the queue: may replace records by what is exported for them. */
  release(batch: T[]): void;
}

export class RecordBatchQueue<T> {
  private queue: T[] = [];
  private exporting: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly exporter: RecordExporter<T>,
    private readonly limits: RecordBatchLimits,
    private readonly dropped: DropCounter,
    private readonly folding?: Folding<T>,
  ) {}

  /** Records waiting, the batch in export aside. */
  get length(): number {
    return this.queue.length;
  }

  add(record: T): void {
    if (this.closed) return;
    const queue = this.queue;
    const { maxQueueSize, maxExportBatchSize } = this.limits;
    const folding = queue.length * 2 >= maxQueueSize ? this.folding : undefined;
    if (folding?.fold(record)) return;
    if (queue.length >= maxQueueSize) {
      this.dropped.add('queue_full', 1);
      return;
    }
    queue.push(record);
    folding?.hold(record);
    if (queue.length >= maxExportBatchSize) this.send();
    else if (this.timer === undefined) this.startTimer();
  }

  async forceFlush(): Promise<void> {
    while (this.exporting !== undefined || this.queue.length > 0) {
      this.send();
      await this.exporting;
    }
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    await this.forceFlush();
    this.closed = true;
    await this.exporter.shutdown();
  }

  private startTimer(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.send();
    }, this.limits.scheduledDelayMillis);
    this.timer.unref();
  }

  private send(): void {
    if (this.exporting !== undefined || this.queue.length === 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const size = this.limits.maxExportBatchSize;
    let batch: T[];
    if (this.queue.length <= size) {
      batch = this.queue;
      this.queue = [];
    } else batch = this.queue.splice(0, size);
    this.folding?.release(batch);
    this.exporting = exportWithDeadline(this.exporter, batch, this.limits.exportTimeoutMillis, this.dropped).then(() => {
      this.exporting = undefined;
      // A full batch goes at once, a part of one when its delay has passed.
      if (this.queue.length >= size) this.send();
      else if (this.queue.length > 0 && this.timer === undefined) this.startTimer();
    });
  }
}
