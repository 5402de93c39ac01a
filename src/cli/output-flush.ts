/**
 * What a command printed reaches its reader before `process.exit`. On a pipe Node writes stdout and
 * stderr asynchronously: what the pipe does not take at once (~64 KiB) waits in the stream, and the
 * exit threw it away (`warden ca list | (sleep 2; wc -c)` counted 64 KiB of a longer list).
 *
 * - The exit waits as long as the reader keeps taking bytes: a slow reader gets everything.
 * - A reader that takes nothing for 30 s (stalled, or a pager left open) is given up on: the rest
 *   is dropped (main.ts says so on stderr and exits 1: the output is incomplete).
 * - A reader that is gone (EPIPE: `| head -1`) ends the output, not the command: no stack trace,
 *   nothing more is waited for, the exit code is the command's.
 */
import type { Writable } from 'node:stream';

/** How long the exit waits for a reader that takes nothing. */
export const STALLED_READER_MS = 30_000;
const POLL_MS = 20;

/**
 * Bytes not yet taken. The stream counts a write until all of it is written (one console.log of a
 * 1 MB JSON document is one write); the pipe handle's queue shrinks with every byte the reader takes.
 */
function pending(stream: Writable): number {
  const handle = (stream as Writable & { _handle?: { writeQueueSize?: unknown } })._handle;
  return stream.writableLength + (typeof handle?.writeQueueSize === 'number' ? handle.writeQueueSize : 0);
}

export interface OutputGuard {
  /** Resolves once every stream has written what it holds or lost its reader (true), or a reader stalled (false). */
  flush(): Promise<boolean>;
}

/** Call before anything is printed: from then on a write error (EPIPE) marks the stream's reader as gone instead of crashing. */
export function guardOutput(streams: readonly Writable[], stalledMs = STALLED_READER_MS): OutputGuard {
  const gone = new Set<Writable>();
  for (const stream of streams) stream.on('error', () => gone.add(stream));

  const flushOne = (stream: Writable) =>
    new Promise<boolean>((resolve) => {
      let left = pending(stream);
      let progressAt = Date.now();
      const check = () => {
        if (gone.has(stream) || stream.writableLength === 0) return resolve(true);
        const now = pending(stream);
        if (now < left) progressAt = Date.now();
        else if (Date.now() - progressAt >= stalledMs) return resolve(false);
        left = now;
        setTimeout(check, POLL_MS);
      };
      check();
    });

  return { flush: async () => (await Promise.all(streams.map(flushOne))).every(Boolean) };
}
