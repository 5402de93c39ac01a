/**
 * Log lines gathered in an array and handed to the writer as one string per batch. sonic-boom
 * buffers by appending each line to a string and measuring that string's UTF-8 length on every
 * write, which flattens the growing string again per line: 2.4–3.4 µs of CPU a line, against
 * 0.31–0.54 µs gathered here and written 64 KiB at a time (`node bench/log-lines.js`); in a CPU
 * profile of the full pipeline under load, log writing was 7 % of busy time before. The writer
 * does the writing: partial writes, EAGAIN retries.
 *
 * With a bound (the sidecar's stdout, logger.ts), lines that would take what waits to be written
 * past it are dropped, whole: access lines and other lines below `warn` once three quarters of it
 * is used, security events and warnings or errors only when all of it is. Dropped lines are
 * counted by kind and, once the writer has caught up, reported in one line (at most one every 10 s,
 * and at exit). Below three quarters a line costs one comparison more.
 */
import type { DestinationStream } from 'pino';

/** What the batcher needs of the writer behind it. */
export interface LineWriter {
  write(data: string): boolean;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
  /** Bytes handed over and not yet written (a bounded batcher counts them against its bound). */
  readonly backlog?: number;
}

export type DroppedKind = 'access' | 'event' | 'other';

export interface LineBound {
  /** What may wait to be written, in bytes (the batch being gathered counted in characters). */
  bytes: number;
  /** `service` of the line that reports drops. */
  service?: string | undefined;
}

/** Between two lines reporting drops. */
const REPORT_EVERY_MS = 10_000;

export class LineBatcher implements DestinationStream {
  private lines: string[] = [];
  private chars = 0;
  /** Past this (lines gathered + the writer's backlog), a line's kind decides whether it is kept. */
  private room = Infinity;
  private limit = Infinity;
  private service: string | undefined;
  /** Lines dropped since the process started, by kind (warden_log_lines_dropped_total). */
  readonly dropped: Record<DroppedKind, number> = { access: 0, event: 0, other: 0 };
  private unreported = 0;
  private firstUnreported = 0;
  private lastReport = -Infinity;

  constructor(
    /** Writes the batches (the sidecar's stdout: stdout-writer.ts). */
    private readonly writer: LineWriter,
    /** A batch goes to the writer once it holds this many characters (or at the next flush). */
    private readonly batchChars = 65_536,
    bound?: LineBound,
  ) {
    if (bound) this.setBound(bound);
  }

  /** Sets the bound (at start, and when a reload changes `log.buffer_bytes`). */
  setBound(bound: LineBound): void {
    this.limit = bound.bytes;
    this.room = Math.floor(bound.bytes * 0.75);
    this.service ??= bound.service;
  }

  write(line: string): void {
    if (this.chars + (this.writer.backlog ?? 0) + line.length > this.room && !this.admit(line)) return;
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= this.batchChars) this.handOver();
  }

  /** Hands the gathered lines to the writer. */
  flush(cb?: (err?: Error) => void): void {
    this.handOver();
    this.writer.flush(cb);
  }

  /** Hands everything over and has the writer write what it still buffers before returning (shutdown, exit). */
  flushSync(): void {
    if (this.unreported > 0) this.report(true);
    this.handOver();
    this.writer.flushSync();
  }

  /**
   * The writer has written some of its backlog: once what waits is below half the room again, the
   * drops since the last report are reported (at most every 10 s).
   */
  drained(): void {
    if (this.unreported > 0 && this.chars + (this.writer.backlog ?? 0) < this.room / 2) this.report(false);
  }

  /** Past the room: events, warnings and errors are kept up to the limit, the rest dropped. */
  private admit(line: string): boolean {
    const kind: DroppedKind = line.endsWith('"msg":"request"}\n') ? 'access' : line.includes('"event":"warden.') ? 'event' : 'other';
    const important =
      kind === 'event' || line.startsWith('{"level":"warn"') || line.startsWith('{"level":"error"') || line.startsWith('{"level":"fatal"');
    if (important && this.chars + (this.writer.backlog ?? 0) + line.length <= this.limit) return true;
    this.dropped[kind]++;
    if (this.unreported++ === 0) this.firstUnreported = Date.now();
    return false;
  }

  private report(atExit: boolean): void {
    const now = Date.now();
    if (!atExit && now - this.lastReport < REPORT_EVERY_MS) return;
    const n = this.unreported;
    const line =
      `{"level":"warn","time":${now}${this.service === undefined ? '' : `,"service":${JSON.stringify(this.service)}`}` +
      `,"warden.log.dropped":${n},"warden.log.dropped_since":${this.firstUnreported}` +
      `,"msg":"dropped ${n} log line${n === 1 ? '' : 's'}: stdout was not read fast enough (warden_log_lines_dropped_total counts them by kind)"}\n`;
    // No room even in the reserve: tried again later, with the drops since added.
    if (this.chars + (this.writer.backlog ?? 0) + line.length > this.limit) return;
    this.unreported = 0;
    this.lastReport = now;
    this.lines.push(line);
    this.chars += line.length;
  }

  private handOver(): void {
    if (this.lines.length === 0) return;
    const batch = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    this.chars = 0;
    this.writer.write(batch);
  }
}
