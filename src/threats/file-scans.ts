/**
 * A multipart upload's files, scanned one after another on one scanner slot, the request's own:
 * `max_concurrent` then bounds requests, not parts, and no file goes unscanned (or is refused as
 * an overload) because of the request's other files. A file that arrives while the one before it
 * waits for its verdict is held until that verdict (one clamd round trip, its timeout at most),
 * then streamed. Meanwhile drained() keeps the client paused (as for a clamd that falls behind), so
 * what is held is what arrived before the pause took hold — a chunk or so, not the rest of the upload.
 */
import type { SpanParent } from '../telemetry/client-span.js';
import { ScannerError, type ClamdClient, type ScanSlot, type ScanStream, type ScanVerdict } from './clamd-client.js';

export interface FileScan {
  write(chunk: Buffer): void;
  /** The file's last byte has arrived. */
  end(): void;
  /** The file's verdict; a rejection is never unhandled while it waits to be read. */
  readonly verdict: Promise<ScanVerdict>;
}

export interface FileScans {
  /** The next file's scan: it starts once the file before it has its verdict. */
  next(): FileScan;
  /**
   * Undefined while clamd keeps up with the file being streamed to it (ScanStream.drained); while
   * a file waits for the verdict before it (its bytes held here), settles once they are handed on.
   */
  drained(): Promise<void> | undefined;
  /** Every verdict is in, or the request is gone: the slot goes back, an open scan is dropped. */
  close(): void;
}

/**
 * `refuses`: whether a scanner failure refuses the request (any, under fail-closed; all but an
 * unreachable clamd, under fail-open). After one, the files behind it fail at once with it instead
 * of each waiting for its own timeout.
 */
export function createFileScans(client: ClamdClient, parent: SpanParent | undefined, refuses: (err: ScannerError) => boolean): FileScans {
  let slot: ScanSlot | ScannerError | undefined;
  let closed = false;
  let failure: ScannerError | undefined;
  let current: ScanStream | undefined;
  /** Settles (either way) once the last file begun has its verdict. */
  let previous: Promise<unknown> = Promise.resolve();
  /** While the last file begun waits for its turn (its bytes held): settles once it has had it. */
  let waiting: Promise<void> | undefined;

  return {
    next() {
      // Taken with the first file, not before: a body of text fields holds no slot.
      slot ??= client.slot(parent);
      let scan: ScanStream | undefined;
      let held: Buffer[] | undefined = [];
      let arrived!: () => void;
      const ended = new Promise<void>((resolve) => (arrived = resolve));
      const turn = previous.then(() => {
        const chunks = held ?? [];
        held = undefined;
        const refused = closed
          ? new ScannerError('protocol', 'scan aborted')
          : (failure ?? (slot instanceof ScannerError ? slot : undefined));
        if (refused) throw refused;
        scan = current = (slot as ScanSlot).stream();
        for (const chunk of chunks) scan.write(chunk);
      });
      // Held bytes are outside every budget (defect 74's class): the upload waits with them. A
      // file's turn comes after the verdict of the one before it, whose last byte has arrived.
      const released: Promise<void> = turn.then(
        () => undefined,
        () => undefined,
      );
      waiting = released;
      void released.then(() => {
        if (waiting === released) waiting = undefined;
      });
      const verdict = Promise.all([turn, ended])
        .then(() => (scan as ScanStream).end())
        .catch((err: unknown) => {
          if (err instanceof ScannerError && refuses(err)) failure ??= err;
          throw err;
        });
      verdict.catch(() => undefined);
      previous = verdict.catch(() => undefined);
      return {
        write(chunk) {
          if (scan) scan.write(chunk);
          else held?.push(chunk);
        },
        end: () => arrived(),
        verdict,
      };
    },
    drained: () => waiting ?? current?.drained(),
    close() {
      closed = true;
      // A settled scan ignores this.
      current?.abort();
      if (slot !== undefined && !(slot instanceof ScannerError)) slot.release();
    },
  };
}
