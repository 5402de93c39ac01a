/**
 * pino logger. JSON lines to stdout by default, batched (one write per 64 KiB), written without
 * blocking from a bounded backlog; flushed on shutdown and at exit. `time` is epoch milliseconds (cheapest to produce).
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import { withPathParametersMasked } from './attribute-limits.js';
import { LineBatcher, type DroppedKind } from './line-batcher.js';
import { makeNonBlocking, NonBlockingWriter } from './stdout-writer.js';

export type { Logger } from 'pino';

/** Header fields whose values never reach a log line. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']);

/** What one logged header value keeps, and what all of one request's values keep together. */
export const LOGGED_VALUE_CHARS = 256;
export const LOGGED_NAME_CHARS = 64;
export const LOGGED_HEADERS_CHARS = 8192;

/**
 * A copy of `headers` safe to log: credentials censored, each value cut at LOGGED_VALUE_CHARS, each
 * name at LOGGED_NAME_CHARS, and the whole at about LOGGED_HEADERS_CHARS (`…(N chars)` says how long
 * it was; the fields past it are counted in `…`). Uncut, one 3 000-character
 * value sent once into h2's HPACK table and named five times per request (27 bytes on the wire)
 * wrote 31 KB of access line (docs/adversarial.md 274). Done here, only when headers are logged,
 * rather than with pino's `redact`, which costs on every line whether or not headers are in it.
 */
export function redactHeaders(headers: Record<string, unknown>, extraSecret?: (name: string) => boolean): Record<string, unknown> {
  // No prototype: header names are the client's (see clientKeyed in src/openapi/request-validator.ts).
  const out = Object.create(null) as Record<string, unknown>;
  let budget = LOGGED_HEADERS_CHARS;
  let left = 0;
  for (const name in headers) {
    if (budget <= 0) {
      left++;
      continue;
    }
    const value =
      isSecret(name, extraSecret) || (name.includes('_') && isSecret(name.replaceAll('_', '-'), extraSecret))
        ? '[redacted]'
        : name === ':path' || name === 'referer' || name === 'origin'
          ? withoutQuery(headers[name])
          : headers[name];
    const cut = cutValue(value, Math.min(LOGGED_VALUE_CHARS, budget));
    const logged = name.length <= LOGGED_NAME_CHARS ? name : `${name.slice(0, LOGGED_NAME_CHARS)}…(${name.length} chars)`;
    budget -= logged.length + cut.length;
    out[logged] = cut.value;
  }
  // Past the budget, fields are counted, not written: names are the client's too (an h2 name of
  // 4 KB in the HPACK table costs a byte per request).
  if (left > 0) out['…'] = `${left} more headers`;
  return out;
}

/** `value` (a string, or the array of a repeated field) within `max` characters, and how many it kept. */
function cutValue(value: unknown, max: number): { value: unknown; length: number } {
  if (typeof value === 'string') return { value: cutString(value, max), length: Math.min(value.length, max) };
  if (!Array.isArray(value)) return { value, length: 0 };
  const kept: unknown[] = [];
  let left = max;
  for (const item of value) {
    const one = cutValue(item, left);
    kept.push(one.value);
    left -= one.length;
    if (left <= 0 && kept.length < value.length) {
      kept.push(`…(${value.length - kept.length} more)`);
      break;
    }
  }
  return { value: kept, length: max - left };
}

function cutString(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max)}…(${value.length} chars)`;
}

/**
 * h2's `:path` without its query, which the access line leaves out everywhere else (`url.path`):
 * a token or API key sent in the query (`?access_token=…`, an OpenAPI apiKey `in: query`) was
 * logged whole in the h2 requests' headers (docs/adversarial.md 207).
 */
function withoutQuery(path: unknown): unknown {
  if (typeof path !== 'string') return path;
  const q = path.indexOf('?');
  // `;jsessionid=…`, `;access_token=…`: a query by another name, as url.path shows it (attribute-limits.ts).
  return q < 0 ? withPathParametersMasked(path) : `${withPathParametersMasked(path.slice(0, q))}?[redacted]`;
}

/** `x_api_key` is `X-Api-Key` to CGI, WSGI and PHP backends (HTTP_X_API_KEY): a credential in either spelling. */
function isSecret(name: string, extraSecret: ((name: string) => boolean) | undefined): boolean {
  return (
    SECRET_HEADERS.has(name) ||
    (name.charCodeAt(0) !== 0x3a /* not a pseudo-header: :authority */ && SECRET_NAME.test(name) && !NOT_SECRET.has(name)) ||
    extraSecret?.(name) === true
  );
}

/**
 * Names that carry credentials by convention, whatever the platform, by whole words between `-`
 * or `_`: `X-Auth-Token`, `X-Amz-Security-Token`, GitLab's `Private-Token`, `X-Vault-Token`,
 * `X-Csrf-Token`, IAP's `X-Goog-IAP-JWT-Assertion`, `X-Forwarded-Authorization`, Azure's
 * `X-MS-Token-AAD-*`, Cloudflare's `Cf-Access-Jwt-Assertion`, one-time codes, CAS tickets, webhook
 * signatures, a session id; and `X-Amzn-Oidc-*`, Kubernetes' token in `Sec-WebSocket-Protocol`
 * (red team 27g: logged whole under `log.access_headers`). The unambiguous stems anywhere
 * (`X-CSRFToken`, `X-ClientSecret`, `Sessionid`: third review rt27, F3), the short ones as whole
 * words: `X-Authenticated-Userid` and `X-Oauth-Scopes` say who and what, and stay (second review, F8).
 */
const SECRET_NAME =
  /token|secret|session|passw|passcode|credential|jwt|bearer|hmac|authkey|authentication|(?:^|[-_])(?:auth|authorization|assertion|key|apikey|pass|pwd|otp|2fa|ticket|signature)(?:[-_]|$)|^sec-websocket-protocol$|^x-amzn-oidc-/;
/** Named like a credential, but none: what identifies a retry, a WebSocket handshake's nonce, a cache entry. */
const NOT_SECRET: ReadonlySet<string> = new Set(['idempotency-key', 'x-idempotency-key', 'sec-websocket-key', 'cache-key', 'x-cache-key']);

export interface LoggerOptions {
  level: string;
  /** Where lines go; stdout (fd 1) when absent. */
  destination?: DestinationStream | undefined;
  base?: Record<string, unknown>;
  /** stdout only: what may wait to be written before lines are dropped (`log.buffer_bytes`). */
  bufferBytes?: number | undefined;
}

/** `log.buffer_bytes`'s default. */
export const DEFAULT_LOG_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * stdout: lines gathered into batches of 64 KiB (line-batcher.ts), each handed to a writer that
 * never blocks (stdout-writer.ts), and at the latest every 200 ms, so that a quiet sidecar's lines
 * still appear promptly. What stdout does not take at once waits, up to `log.buffer_bytes`;
 * past that lines are dropped (access lines first, security events and warnings last), counted
 * (`warden_log_lines_dropped_total`) and reported in one line once stdout takes lines again. A
 * stalled log reader used to hold the whole sidecar up, data plane and /healthz included. All
 * writes happen on the main thread, so the lines of a process that exits (a crash's included) come
 * out whole and in order: the exit hook writes what is left, waiting up to 2 s for a slow reader.
 * One batcher for the process: every logger to stdout shares it.
 */
let stdout: LineBatcher | undefined;
function bufferedStdout(bufferBytes: number | undefined, service: unknown): LineBatcher {
  const bound = { bytes: bufferBytes ?? DEFAULT_LOG_BUFFER_BYTES, service: typeof service === 'string' ? service : undefined };
  if (stdout) {
    if (bufferBytes !== undefined) stdout.setBound(bound);
    return stdout;
  }
  makeNonBlocking(1);
  const writer = new NonBlockingWriter(1, () => batcher.drained());
  const batcher = new LineBatcher(writer, 65_536, bound);
  setInterval(
    () =>
      flushQuietly(() => {
        batcher.flush();
        batcher.drained();
      }),
    200,
  ).unref();
  process.once('exit', () => flushQuietly(() => batcher.flushSync()));
  stdout = batcher;
  return batcher;
}

/** Sets `log.buffer_bytes` of the process's stdout (a reload). */
export function setLogBufferBytes(bytes: number): void {
  stdout?.setBound({ bytes });
}

const NONE_DROPPED: Readonly<Record<DroppedKind, number>> = { access: 0, event: 0, other: 0 };

/** Lines stdout dropped since the process started, by kind (`warden_log_lines_dropped_total`). */
export function logLinesDropped(): Readonly<Record<DroppedKind, number>> {
  return stdout?.dropped ?? NONE_DROPPED;
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
  const destination = options.destination ?? bufferedStdout(options.bufferBytes, options.base?.service);
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
