/**
 * The writer behind the sidecar's stdout: each batch (line-batcher.ts) written by `fs.writeSync` on
 * a non-blocking descriptor, so a write takes what the pipe has room for and never waits; the rest
 * waits in a queue and is tried again at the next batch or on a timer. A stdout nobody reads (a
 * stalled log driver, `warden proxy | cat` with cat stopped) used to hold the whole event loop in
 * a blocking write (docs/adversarial.md). The queue is bounded by the batcher, which drops lines
 * before it grows past `log.buffer_bytes`.
 *
 * Every byte is written on the main thread, in order: nothing is in flight elsewhere, so the
 * synchronous flush at exit (a crash's included) cannot be overtaken by an earlier write, which is
 * what went wrong with sonic-boom's asynchronous mode (its writes run in the thread pool, its
 * flushSync does not wait for one in flight and retries EAGAIN for ever). That flush waits for a
 * slow reader, but only so long: an exit with a stalled stdout is not held up for ever.
 */
import { fstatSync, writeSync } from 'node:fs';
import type { LineWriter } from './line-batcher.js';

/** How long the synchronous flush (shutdown, exit) waits for a reader that takes nothing. */
const SYNC_FLUSH_MS = 2000;
/** Retries after EAGAIN: from 1 ms, doubling while nothing is taken, up to this. */
const MAX_RETRY_MS = 50;

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number) => void Atomics.wait(sleeper, 0, 0, ms);

/**
 * Makes `fd` non-blocking when it is a pipe or a socket, as libuv does when Node opens stdout on
 * one (`process.stdout` is a net.Socket then): opening it that way is what sets O_NONBLOCK. Node
 * puts the descriptor's flags back as they were when the process exits. A file never blocks for
 * long; a terminal is left blocking, as Node leaves it.
 */
export function makeNonBlocking(fd: number): void {
  try {
    const stat = fstatSync(fd);
    if (fd === 1 && (stat.isFIFO() || stat.isSocket())) void process.stdout;
  } catch {
    // closed: every write will fail and be dropped
  }
}

export class NonBlockingWriter implements LineWriter {
  /** Bytes queued, not yet written. A plain field: the batcher reads it for every line. */
  backlog = 0;
  private readonly queue: Buffer[] = [];
  /** How much of queue[0] is written already. */
  private head = 0;
  private retry: NodeJS.Timeout | undefined;
  private retryMs = 1;
  /** The last synchronous flush ran out of time, and nothing has been taken since. */
  private stalled = false;

  constructor(
    private readonly fd: number,
    /** Called when bytes were written after the queue had some waiting (the batcher reports its drops then). */
    private readonly onDrained?: () => void,
    private readonly syncFlushMs = SYNC_FLUSH_MS,
  ) {}

  write(data: string): boolean {
    const buf = Buffer.from(data);
    this.queue.push(buf);
    this.backlog += buf.length;
    this.writeSome();
    return this.backlog === 0;
  }

  flush(cb?: (err?: Error) => void): void {
    this.writeSome();
    cb?.();
  }

  /** Writes what is queued, waiting up to 2 s for a reader that takes nothing (less if the last flush already waited in vain). */
  flushSync(): void {
    const deadline = Date.now() + (this.stalled ? 0 : this.syncFlushMs);
    for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
      this.writeSome(false);
      if (this.queue.length === 0) return;
      if (Date.now() >= deadline) {
        this.stalled = true;
        return;
      }
      sleepSync(pause);
    }
  }

  /** Writes from the head of the queue until it is empty or the descriptor takes no more. */
  private writeSome(schedule = true): void {
    const waiting = this.backlog > 0;
    let wrote = false;
    while (this.queue.length > 0) {
      const buf = this.queue[0]!;
      let n: number;
      try {
        n = writeSync(this.fd, buf, this.head, buf.length - this.head);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') break;
        // EPIPE (the reader is gone for good), EBADF: what is queued can never be written.
        this.queue.length = 0;
        this.head = 0;
        this.backlog = 0;
        break;
      }
      if (n > 0) wrote = true;
      this.head += n;
      this.backlog -= n;
      if (this.head === buf.length) {
        this.queue.shift();
        this.head = 0;
      } else if (n === 0) break;
    }
    if (wrote) {
      this.stalled = false;
      this.retryMs = 1;
    }
    if (this.queue.length === 0) {
      clearTimeout(this.retry);
      this.retry = undefined;
    } else if (schedule && this.retry === undefined) {
      if (!wrote) this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
      this.retry = setTimeout(() => {
        this.retry = undefined;
        this.writeSome();
      }, this.retryMs).unref();
    }
    if (waiting && wrote) this.onDrained?.();
  }
}
