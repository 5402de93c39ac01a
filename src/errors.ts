/**
 * WardenError and the closed catalogue of error codes.
 *
 * Every refusal the sidecar makes is one of these codes. The catalogue fixes, per code, the HTTP
 * status, a short human title (sent to the client) and the security event it raises (DESIGN §4, §5).
 * The `cause` is for logs only and never reaches the client.
 */
import type { EventName } from './telemetry/events.js';

interface ErrorSpec {
  readonly status: number;
  readonly title: string;
  /** The security event this refusal raises; undefined for failures that are not security decisions. */
  readonly event: EventName | undefined;
}

export const ERRORS = {
  // Request shape and limits (src/proxy/headers.ts, listener limits)
  ERR_REQUEST_MALFORMED: { status: 400, title: 'Malformed request', event: 'warden.http.malformed' },
  ERR_REQUEST_AMBIGUOUS: { status: 400, title: 'Ambiguous request framing', event: 'warden.http.smuggling' },
  ERR_PATH_INVALID: { status: 400, title: 'Invalid request path', event: 'warden.http.path_invalid' },
  ERR_HEADERS_TOO_LARGE: { status: 431, title: 'Request header fields too large', event: 'warden.http.limit_exceeded' },
  ERR_BODY_TOO_LARGE: { status: 413, title: 'Request body too large', event: 'warden.http.limit_exceeded' },
  ERR_REQUEST_TIMEOUT: { status: 408, title: 'Request not received in time', event: 'warden.http.limit_exceeded' },
  // Routing and policy
  ERR_ROUTE_NOT_FOUND: { status: 404, title: 'No such route', event: 'warden.route.unknown' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed on this route', event: 'warden.route.unknown' },
  ERR_ACCESS_DENIED: { status: 403, title: 'Access denied', event: 'warden.access.denied' },
  // Upstream (the backend behind the sidecar)
  ERR_UPSTREAM_UNAVAILABLE: { status: 502, title: 'Backend unavailable', event: 'warden.upstream.failed' },
  ERR_UPSTREAM_TIMEOUT: { status: 504, title: 'Backend did not answer in time', event: 'warden.upstream.failed' },
  ERR_UPSTREAM_PROTOCOL: { status: 502, title: 'Backend sent an invalid response', event: 'warden.upstream.failed' },
  // Defects
  ERR_INTERNAL: { status: 500, title: 'Internal error', event: undefined },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export interface WardenErrorOptions {
  /** Logged, never sent: what exactly went wrong (library error, offending value). */
  cause?: unknown;
  /** Short detail safe to send to the client (no secrets, no echoed input beyond names). */
  detail?: string;
  /** Which rule or check fired (e.g. `access.clients.deny`, `llhttp:HPE_INVALID_HEADER_TOKEN`). */
  rule?: string;
  /** Extra response headers (e.g. Allow on 405, Retry-After on 429). */
  headers?: Readonly<Record<string, string>>;
}

export class WardenError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  readonly rule: string | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(code: ErrorCode, options: WardenErrorOptions = {}) {
    // Refusals can arrive at attack rates; a stack trace per refusal is wasted work, so none is taken.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(ERRORS[code].title, options.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.name = 'WardenError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.title = ERRORS[code].title;
    this.detail = options.detail;
    this.rule = options.rule;
    this.headers = options.headers;
  }

  get event(): EventName | undefined {
    return ERRORS[this.code].event;
  }
}

export function isWardenError(value: unknown): value is WardenError {
  return value instanceof WardenError;
}
