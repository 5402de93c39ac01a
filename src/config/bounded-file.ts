/**
 * Reads a file the operator named (the configuration, a `${file:…}` secret, the OpenAPI document)
 * up to a bound. `readFileSync` reads until the end: `${file:/dev/zero}` or `-c /dev/zero` never
 * ended and grew to gigabytes. Read in chunks instead, so a device, a FIFO (`-c <(envsubst …)`
 * still works) or a huge file stops at the bound with a clear reason.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';

/** A file longer than the bound: its message says so, and `code` names it for callers that print codes. */
export class FileTooLargeError extends Error {
  readonly code = 'EFBIG';
  constructor(readonly maxBytes: number) {
    super(`larger than ${describeBytes(maxBytes)}`);
  }
}

const CHUNK = 64 * 1024;

/** A FIFO or socket where only a file will do: reading it could block the process without end. */
export class NotAFileError extends Error {
  readonly code = 'ENOTFILE';
  constructor(kind: string) {
    super(`${kind}, not a file: reading it could wait for a writer without end; name a regular file`);
  }
}

export interface ReadOptions {
  /**
   * A FIFO is read (waiting for its writer): before anything is served (the configuration and its
   * `${file:…}` values at startup, `-c <(envsubst …)`) and in one-shot commands
   * (`--passphrase-file <(…)`). Otherwise one is refused: a reload that opened a FIFO without a
   * writer held the event loop, so no request, no /healthz and not even SIGTERM was answered.
   */
  readonly allowFifo?: boolean;
}

/**
 * Where waiting is allowed, anything but a file is opened as before, blocking: a FIFO (its writer
 * may have come and gone by the time a second open would come: its bytes go with the last reader)
 * and a terminal as /dev/stdin (which waits for its line instead of failing with EAGAIN). Otherwise
 * it is opened without blocking (opening a FIFO for reading waits for a writer, before any check)
 * and a FIFO or socket refused.
 */
function openBounded(path: string, options: ReadOptions): number {
  if (options.allowFifo) {
    const stat = statSync(path, { throwIfNoEntry: false });
    return openSync(path, stat !== undefined && !stat.isFile() ? constants.O_RDONLY : constants.O_RDONLY | constants.O_NONBLOCK);
  }
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const stat = fstatSync(fd);
  if (stat.isFIFO() || stat.isSocket()) {
    closeSync(fd);
    throw new NotAFileError(stat.isFIFO() ? 'a FIFO' : 'a socket');
  }
  return fd;
}

export function readFileBounded(path: string, maxBytes: number, options: ReadOptions = {}): Buffer {
  const fd = openBounded(path, options);
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK, maxBytes + 1 - total));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      total += n;
      if (total > maxBytes) throw new FileTooLargeError(maxBytes);
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/** What a read failure is called in a one-line message: "larger than 1 MiB", "ENOENT", "EISDIR". */
export function readFailure(err: unknown): string {
  if (err instanceof FileTooLargeError || err instanceof NotAFileError) return err.message;
  return (err as NodeJS.ErrnoException).code ?? 'error';
}

function describeBytes(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / 1024 / 1024} MiB` : `${bytes} bytes`;
}

/** The configuration file itself. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/** A `${file:…}` value or a TLS file: a secret, a key or a certificate chain. */
export const MAX_SECRET_FILE_BYTES = 1024 * 1024;
