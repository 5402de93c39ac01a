/**
 * A pooled keep-alive connection the backend closed as Warden reused it. A backend closes idle
 * connections after its own timeout (gunicorn's gthread worker after 2 s, below Warden's
 * upstream.keep_alive of 4 s); a request written just as it does meets the close before any answer,
 * and undici fails it with "other side closed" (FIN) or ECONNRESET / EPIPE (the backend closed with
 * the request unread). The backend never acted on it. As nginx and Go's Transport do, such a
 * request is sent again, once, on a fresh connection, when it may be: its method is idempotent
 * (RFC 9110 §9.2.2) and its body is absent or held whole, so that the same bytes go again.
 */
import type { Socket } from 'node:net';
import type { buildConnector } from 'undici';

/**
 * The idempotent methods of RFC 9110 §9.2.2. PUT and DELETE too, as nginx retries them: the
 * failure this retries is one the backend cannot have acted on (a connection that had served
 * requests, closed before any byte of an answer), and their bodies go only when held whole.
 */
const REPLAYABLE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export const isReplayableMethod = (method: string): boolean => REPLAYABLE_METHODS.has(method);

/** Set on a socket error: whether that connection had read anything (an answer to an earlier request) before it failed. */
const HAD_READ = Symbol('warden.hadRead');

type Marked = { [HAD_READ]?: boolean; code?: unknown; message?: unknown; socket?: { bytesRead?: unknown } };

/** Runs first among the socket's error listeners (undici adds its own after the connector's callback). */
function markError(this: Socket, err: Marked): void {
  if (typeof err === 'object' && err !== null) err[HAD_READ] = this.bytesRead > 0;
}

/**
 * The connector, with each socket's errors marked with whether it had read anything: undici hands
 * ECONNRESET and EPIPE on as the socket reported them, with nothing saying whether it was fresh.
 * One listener per connection, none per request.
 */
export function markingReads(open: buildConnector.connector): buildConnector.connector {
  return (options, callback) =>
    open(options, (...args) => {
      // A failed connect calls back with the error alone.
      if (args[0] === null) args[1].on('error', markError);
      callback(...args);
    });
}

/**
 * The request failed as a reused connection the backend closed does: closed or reset before any
 * byte of the response (the caller checks that none arrived), on a connection that had answered
 * before. The same errors on a fresh connection say the backend is down, or took the request and
 * died: not retried.
 */
export function isStaleConnectionFailure(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as Marked;
  switch (e.code) {
    case 'UND_ERR_SOCKET':
      // undici's SocketError carries the socket's counters; "bad response" / "bad upgrade" are answers.
      return (e.message === 'other side closed' || e.message === 'closed') && Number(e.socket?.bytesRead) > 0;
    case 'ECONNRESET':
    case 'EPIPE':
      return e[HAD_READ] === true;
    default:
      return false;
  }
}
