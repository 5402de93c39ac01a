/**
 * Log lines gathered in an array and handed to the writer (pino's sonic-boom) as one string per
 * batch. sonic-boom buffers by appending each line to a string and measuring that string's UTF-8
 * length on every write, which flattens the growing string again per line: 2.4–3.4 µs of CPU a
 * line, against 0.31–0.54 µs gathered here and written 64 KiB at a time (`node bench/log-lines.js`);
 * in a CPU profile of the full pipeline under load, log writing was 7 % of busy time before. The
 * writer still does all the writing: partial writes, EAGAIN retries.
 */
import type { DestinationStream } from 'pino';

/** What the batcher needs of the writer behind it (sonic-boom has all of it). */
export interface LineWriter {
  write(data: string): boolean;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
}

export class LineBatcher implements DestinationStream {
  private lines: string[] = [];
  private chars = 0;

  constructor(
    /** Writes the batches (sonic-boom; the sidecar's stdout writes each one synchronously, logger.ts). */
    private readonly writer: LineWriter,
    /** A batch goes to the writer once it holds this many characters (or at the next flush). */
    private readonly batchChars = 65_536,
  ) {}

  write(line: string): void {
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
    this.handOver();
    this.writer.flushSync();
  }

  private handOver(): void {
    if (this.lines.length === 0) return;
    const batch = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    this.chars = 0;
    this.writer.write(batch);
  }
}
