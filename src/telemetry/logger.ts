/**
 * pino logger. JSON lines to stdout by default, batched (one write per 64 KiB); flushed on
 * shutdown and at exit. `time` is epoch milliseconds (cheapest to produce).
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import { LineBatcher } from './line-batcher.js';

export type { Logger } from 'pino';

/** Header fields whose values never reach a log line. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']);

/**
 * A copy of `headers` safe to log: credentials censored. Done here, only when headers are logged,
 * rather than with pino's `redact`, which costs on every line whether or not headers are in it.
 */
export function redactHeaders(headers: Record<string, unknown>, extraSecret?: (name: string) => boolean): Record<string, unknown> {
  // No prototype: header names are the client's (see clientKeyed in src/openapi/request-validator.ts).
  const out = Object.create(null) as Record<string, unknown>;
  for (const name in headers)
    out[name] =
      isSecret(name, extraSecret) || (name.includes('_') && isSecret(name.replaceAll('_', '-'), extraSecret))
        ? '[redacted]'
        : name === ':path'
          ? withoutQuery(headers[name])
          : headers[name];
  return out;
}

/**
 * h2's `:path` without its query, which the access line leaves out everywhere else (`url.path`):
 * a token or API key sent in the query (`?access_token=…`, an OpenAPI apiKey `in: query`) was
 * logged whole in the h2 requests' headers (docs/adversarial.md 207).
 */
function withoutQuery(path: unknown): unknown {
  if (typeof path !== 'string') return path;
  const q = path.indexOf('?');
  return q < 0 ? path : `${path.slice(0, q)}?[redacted]`;
}

/** `x_api_key` is `X-Api-Key` to CGI, WSGI and PHP backends (HTTP_X_API_KEY): a credential in either spelling. */
function isSecret(name: string, extraSecret: ((name: string) => boolean) | undefined): boolean {
  return SECRET_HEADERS.has(name) || extraSecret?.(name) === true;
}

export interface LoggerOptions {
  level: string;
  /** Where lines go; stdout (fd 1) when absent. */
  destination?: DestinationStream | undefined;
  base?: Record<string, unknown>;
}

/**
 * stdout: lines gathered into batches of 64 KiB (line-batcher.ts), each written with one
 * synchronous write, and at the latest every 200 ms, so that a quiet sidecar's lines still appear
 * promptly. Synchronous, because only then do the lines of a process that exits (a crash's
 * included) come out whole and in order: with asynchronous writes, the batch written at exit could
 * overtake one still in the thread pool (a test caught it). As with pino's default destination, a
 * stdout that takes nothing more (a stalled log reader) holds the sidecar up instead of filling
 * its memory. One batcher for the process: every logger to stdout shares it, and one exit hook
 * writes out what is left.
 */
let stdout: LineBatcher | undefined;
function bufferedStdout(): DestinationStream {
  if (stdout) return stdout;
  // minLength 0: sonic-boom writes each batch as it comes, keeping none of its own.
  const batcher = new LineBatcher(pino.destination({ dest: 1, sync: true, minLength: 0 }));
  setInterval(() => flushQuietly(() => batcher.flush()), 200).unref();
  process.once('exit', () => flushQuietly(() => batcher.flushSync()));
  stdout = batcher;
  return batcher;
}

function flushQuietly(flush: () => void): void {
  try {
    flush();
  } catch {
    // closed, or exiting: nothing more can be done
  }
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
  const destination = destinations.get(logger);
  flushQuietly(destination?.flushSync ? () => destination.flushSync?.() : () => logger.flush());
}
