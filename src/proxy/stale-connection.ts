/**
 * A pooled keep-alive connection the backend closed as Warden reused it. A backend closes idle
 * connections after its own timeout (gunicorn's gthread worker after 2 s, below Warden's
 * upstream.keep_alive of 4 s); a request written just as it does meets the close before any answer,
 * and undici fails it with "other side closed" (FIN) or ECONNRESET / EPIPE (the backend closed with
 * the request unread). As nginx and Go's Transport do, such a request is sent again, once, on a
 * fresh connection, when it may be: its method is safe (a backend that took it and died at once
 * would run it twice) and its body is absent or held whole, so that the same bytes go again.
 */
import type { Socket } from 'node:net';
import type { buildConnector } from 'undici';

/**
 * The safe methods (RFC 9110 §9.2.1): a close that came soon after the request was written is an
 * idle close racing it, but a backend may also have taken the request and died before answering;
 * only a safe method may then run twice. Not PUT or DELETE (as Go's Transport: their side effects,
 * audit rows and webhooks, would repeat; review rt29-3).
 */
const REPLAYABLE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * How soon after the request was written the close must come to be taken for an idle close racing
 * it: the backend's FIN or RST is then already on its way. Later, the backend was working on it.
 */
const STALE_CLOSE_WITHIN_MS = 1000;

/** Less of timeouts.headers than this left: no retry (the second request would outlive its caller's 504). */
const RETRY_FLOOR_MS = 50;

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
 * The request failed as a reused connection the backend closed does: closed or reset before a
 * response head (the caller checks), on a connection that had answered before, within
 * STALE_CLOSE_WITHIN_MS of the write, with time left to send it again. The same errors on a fresh
 * connection say the backend is down; later ones that it took the request and died: not retried.
 */
export function isStaleConnectionFailure(err: unknown, sinceWrittenMs: number, remainingMs: number): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if (sinceWrittenMs > STALE_CLOSE_WITHIN_MS || remainingMs < RETRY_FLOOR_MS) return false;
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
