/**
 * The export queue of request spans for OTLP/protobuf: a span is encoded as it ends straight into
 * the batch that will be sent, whose buffer becomes the request body when the batch is sealed
 * (BatchFrame writes the resource and scope in front). No span waits as an object, and a batch is
 * neither regrouped nor copied at export.
 *
 * Why: through the SDK's batch processor, each span was encoded on its own, queued as an object,
 * then grouped by resource and scope, copied into the export request and copied again; queueing
 * and exporting measured about as much as encoding (docs/history/telemetry-cost.md, run K). This queue
 * gained about 3 % there, which a loop of the same work does not show. The SDK's spans
 * (IdP, clamd, Redis calls) go through a queue of objects (record-batch-queue.ts); every request span has
 * Warden's resource and scope, so a batch needs no grouping.
 *
 * The same limits as the SDK's processor: at most `maxQueueSize` spans waiting (more are dropped
 * and counted), a batch sent when it holds `maxExportBatchSize` spans or `scheduledDelayMillis`
 * after its first, one export at a time. And two in bytes, which the SDK's does not have: spans
 * differ in size by a thousand times (a long path, a request's events), so a count alone let a
 * slow collector hold gigabytes, and made export requests larger than a collector accepts (one
 * refused request loses every span in it; docs/adversarial.md, defect 109).
 *
 * An export is given up after `exportTimeoutMillis`, whatever the exporter does (export-deadline.ts:
 * one export that never ended stopped request spans for good, defect 110).
 */
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { exportWithDeadline, type DeadlineExporter } from './export-deadline.js';
import type { DropCounter } from './telemetry-drops.js';
import { BatchFrame, type Writer } from './otlp-span-encoder.js';

/** A sealed batch: an ExportTraceServiceRequest, and the spans it holds (`length`, as the exporter and the breaker count). */
export interface SpanBatch {
  readonly bytes: Uint8Array;
  readonly length: number;
}

export interface SpanBatchExporter extends DeadlineExporter<SpanBatch> {
  shutdown(): Promise<void>;
}

export interface SpanBatchLimits {
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduledDelayMillis: number;
  /** Encoded bytes waiting (the batch in export aside): past it, new spans are dropped and counted. */
  readonly maxQueueBytes: number;
  /** A batch is sent once it holds this many bytes: at most this plus one request's spans. */
  readonly maxExportBatchBytes: number;
  /** An export not answered by then is given up: its spans are counted as dropped and the next batch goes. */
  readonly exportTimeoutMillis: number;
}

const FIRST_CAPACITY = 64 * 1024;

export class SpanBatchQueue implements SpanProcessor {
  private readonly frame: BatchFrame;
  private writer: Writer | undefined;
  private count = 0;
  private readonly sealed: SpanBatch[] = [];
  /** Spans in `sealed`. */
  private waiting = 0;
  /** Bytes of the batches in `sealed`. */
  private waitingBytes = 0;
  private exporting: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** A new batch's buffer: a quarter more than the last full batch needed, so that a batch rarely grows (a copy). */
  private capacity = FIRST_CAPACITY;
  private closed = false;

  constructor(
    private readonly exporter: SpanBatchExporter,
    resource: Resource,
    scope: InstrumentationScope,
    private readonly limits: SpanBatchLimits,
    private readonly dropped: DropCounter,
  ) {
    this.frame = new BatchFrame(resource, scope);
  }

  /** The size of the next batch's buffer. */
  get nextBufferBytes(): number {
    return this.capacity;
  }

  /** Encoded bytes of the spans waiting: the open batch and the sealed ones, not the batch in export. */
  get queuedBytes(): number {
    return this.waitingBytes + (this.writer?.pos ?? 0);
  }

  /**
   * Queues `spans` finished spans (Warden's resource and scope), which `write` writes into the
   * batch as ScopeSpans entries (otlp-request-encoder.ts for a request's, `writeSpan` for any).
   * They stay together in one batch; when the queue is full they are dropped and counted. Their
   * size is known only once written, so the bytes waiting may pass `maxQueueBytes` by one request's.
   */
  add(spans: number, write: (w: Writer) => void): void {
    if (this.closed) return;
    const limits = this.limits;
    if (this.count + this.waiting + spans > limits.maxQueueSize || this.queuedBytes >= limits.maxQueueBytes) {
      this.dropped.add('queue_full', spans);
      return;
    }
    // A batch never holds more than maxExportBatchSize spans.
    if (this.count + spans > limits.maxExportBatchSize) this.sealAndSend(true);
    let w = this.writer;
    if (w === undefined) {
      w = this.writer = this.frame.open(this.capacity);
      this.timer = setTimeout(() => this.sealAndSend(), limits.scheduledDelayMillis);
      this.timer.unref();
    }
    write(w);
    if ((this.count += spans) >= limits.maxExportBatchSize || w.pos >= limits.maxExportBatchBytes) this.sealAndSend(true);
  }

  /** The SDK's own spans go through their own queue (record-batch-queue.ts). */
  onStart(): void {}
  onEnd(): void {}

  async forceFlush(): Promise<void> {
    this.seal();
    while (this.exporting !== undefined || this.sealed.length > 0) {
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

  /** `full`: sealed for lack of room, not by the timer or a flush. */
  private sealAndSend(full = false): void {
    this.seal(full);
    this.send();
  }

  private seal(full = false): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const w = this.writer;
    if (w === undefined) return;
    this.writer = undefined;
    const request = this.frame.seal(w);
    // A batch sealed by the timer may fill little of its buffer: copied, a waiting batch holds what
    // it needs, so the spans' count bounds the memory queued (a slow collector and little traffic
    // would otherwise keep a whole buffer per span or two).
    const bytes = request.length * 2 < w.buf.length ? Buffer.from(request) : request;
    // Sized by the last full batch, up or down: one batch of huge spans must not make every later buffer huge.
    if (full) this.capacity = Math.max(FIRST_CAPACITY, Math.ceil(w.pos * 1.25));
    this.sealed.push({ bytes, length: this.count });
    this.waiting += this.count;
    this.waitingBytes += bytes.length;
    this.count = 0;
  }

  private send(): void {
    if (this.exporting !== undefined) return;
    const batch = this.sealed.shift();
    if (batch === undefined) return;
    this.waiting -= batch.length;
    this.waitingBytes -= batch.bytes.length;
    this.exporting = exportWithDeadline(this.exporter, batch, this.limits.exportTimeoutMillis, this.dropped).then(() => {
      this.exporting = undefined;
      this.send();
    });
  }
}
