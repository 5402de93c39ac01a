/**
 * pino logger. JSON lines to stdout by default, buffered (sonic-boom) so that logging never blocks
 * the event loop; flushed on shutdown. `time` is epoch milliseconds (cheapest to produce).
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/** Header fields whose values never reach a log line. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']);

/**
 * A copy of `headers` safe to log: credentials censored. Done here, only when headers are logged,
 * rather than with pino's `redact`, which costs on every line whether or not headers are in it.
 */
export function redactHeaders(headers: Record<string, unknown>, extraSecret?: (name: string) => boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name in headers) out[name] = SECRET_HEADERS.has(name) || extraSecret?.(name) ? '[redacted]' : headers[name];
  return out;
}

export interface LoggerOptions {
  level: string;
  /** Where lines go; stdout (fd 1) when absent. */
  destination?: DestinationStream | undefined;
  base?: Record<string, unknown>;
}

/**
 * stdout, written asynchronously in batches of at least 4 KiB, and at the latest every 200 ms: one
 * write per access line cost ~10 % of the request path's CPU; batching removes nearly all of it
 * while a quiet sidecar's lines still appear promptly.
 */
function bufferedStdout(): DestinationStream {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => {
    try {
      destination.flush();
    } catch {
      // not open yet, or already closed: the next tick (or exit) flushes
    }
  }, 200).unref();
  return destination;
}

const destinations = new WeakMap<Logger, { flushSync?: () => void }>();

export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? bufferedStdout();
  const logger = pino(
    {
      level: options.level,
      base: options.base ?? null,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  destinations.set(logger, destination as { flushSync?: () => void });
  return logger;
}

/** Writes out whatever the logger still buffers (before exit). */
export function flushLogger(logger: Logger): void {
  try {
    const destination = destinations.get(logger);
    if (destination?.flushSync) destination.flushSync();
    else logger.flush();
  } catch {
    // nothing more can be done at exit
  }
}
