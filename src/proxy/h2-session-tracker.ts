/**
 * Open-stream bookkeeping for one inbound HTTP/2 session: the idle timeout, closing when idle
 * (draining), destroying a session that Warden is closing once it stops making progress, and a
 * liveness probe for a session with open streams (below, LIVENESS_PROBE_MS).
 *
 * Why the last: on Node 20 a session whose client went away at the wrong moment (h2load ending
 * with streams in flight; about one run in ten by hand) sometimes never learns that its socket
 * is gone: a write to the TLS socket never reports back, nghttp2 keeps its GOAWAY queued behind
 * it, and neither `session.close()` nor `session.destroy()` ends (the native session finishes
 * closing only when that write does). A drain waited for such a session until
 * `lifecycle.drain_timeout` (20 s by default), an idle close forever. It moves no byte in or out,
 * which a live session does; destroying its TLS socket cancels the write and lets it close.
 */
import { constants, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { ClientClosedError } from './body.js';

export interface SessionTracker {
  /** Closes the session (GOAWAY, then close) as soon as it has no open stream. */
  closeWhenIdle(): void;
  /**
   * Sends GOAWAY now: no new stream is accepted, the open ones finish (a caller whose client CA is no
   * longer trusted, whose next requests must not wait for an idle moment that a busy client never has).
   */
  closeNow(): void;
}

/**
 * How long a session Warden is closing may move no byte before it is destroyed, provided every
 * stream it still has was answered (its response headers sent): then nothing is left that only the
 * backend could still produce, so a client that has not taken a byte in that time gets no more.
 * A stream still waiting for the backend keeps its session until the drain's grace period ends.
 */
export const CLOSING_STALL_MS = 2000;

/**
 * The liveness probe of a session with open streams: at a tick that finds no byte moved (read or
 * written) since the one before, a PING is sent; at the next, a PING still unanswered with no byte
 * read since it went out ends the session (its streams destroyed as the client's leaving, the
 * session, its TLS socket). So a dead session goes between two and three ticks after its last byte.
 *
 * Why: on Node 20 a client frame nghttp2 takes for a connection error (a PING or a DATA frame over
 * the frame size, PRIORITY on its own stream, CONTINUATION without HEADERS, bad HPACK, DATA on an
 * idle stream) makes it send GOAWAY and stop reading, and Node then reports nothing: no 'error' nor
 * 'close' on the session, the FIN never read, no 'close' on the open streams (nor any flag or
 * `session.state` field that changes, by hand). Each such connection held its place under
 * `max_connections`, a `max_in_flight` slot and its body's share of `max_buffered_bytes` for good.
 * A live client answers a PING at once, whatever its streams wait for (a long poll, a slow backend,
 * an upload paused by flow control); such a session answers none. Cost: a client that reads nothing
 * of its connection for two to three ticks while a request is open is disconnected.
 */
export const LIVENESS_PROBE_MS = 5000;

/**
 * Tracks a session's open streams. After `idleMs` without one, the session is closed. Node's own
 * session timeout counts frames instead, so it would also cut streams waiting on a slow backend.
 *
 * Draining also waits for the session to be idle before sending GOAWAY: undici (7.x) fails every
 * in-flight request on any GOAWAY, even a graceful one, so an early GOAWAY would lose requests.
 */
export interface SessionLimits {
  /** limits.idle_timeout: a session without a stream for this long is closed. */
  idleMs: number;
  /**
   * limits.send_timeout: a stream whose response Warden has ended and that is still open this long
   * after (the client takes none of it: no WINDOW_UPDATE) is reset, and `onSendTimeout` told. The
   * forwarder's own send timer covers a response the stream could not buffer; a smaller one is
   * taken whole, ended, and then waited for by nghttp2 for as long as the client keeps the window
   * shut — an answered stream, its bytes and its session held for good (a slow read).
   */
  sendTimeoutMs: number;
  onSendTimeout(stream: ServerHttp2Stream): void;
  /** The liveness probe ended the session, which had `openStreams` streams open. */
  onUnresponsive(openStreams: number): void;
}

export function trackSession(session: Http2Session, socket: TLSSocket, limits: SessionLimits): SessionTracker {
  const { idleMs, sendTimeoutMs } = limits;
  const streams = new Set<ServerHttp2Stream>();
  let closing = false;
  let idleTimer: NodeJS.Timeout | undefined;
  let stallTimer: NodeJS.Timeout | undefined;
  let bytesMoved = -1;
  /**
   * One timer per session, not per response: every send_timeout, the streams found ended (by
   * Warden) and still open at the previous sweep are reset, the others marked. A stream so goes
   * between one and two send_timeouts after its end.
   */
  let sendTimer: NodeJS.Timeout | undefined;
  let endedAtLastSweep = new Set<ServerHttp2Stream>();
  const sweep = () => {
    sendTimer = undefined;
    const ended = new Set<ServerHttp2Stream>();
    for (const stream of streams) {
      if (!stream.writableEnded || stream.closed || stream.destroyed) continue;
      if (!endedAtLastSweep.has(stream)) ended.add(stream);
      else {
        limits.onSendTimeout(stream);
        stream.close(constants.NGHTTP2_CANCEL);
      }
    }
    endedAtLastSweep = ended;
    if (streams.size > 0) sendTimer = setTimeout(sweep, sendTimeoutMs).unref();
  };

  const moved = (): number => socket.bytesRead + socket.bytesWritten;
  const allAnswered = (): boolean => {
    for (const stream of streams) if (!stream.headersSent) return false;
    return true;
  };
  /**
   * Ends a session that no longer moves its bytes. Its streams first, as the client's leaving: the
   * session's destroy alone closes them with code NO_ERROR, and a response Warden had ended (but
   * nghttp2 never sent) then read as delivered in the access line instead of `warden.aborted`.
   */
  const cut = () => {
    const error = new ClientClosedError();
    for (const stream of streams) if (!stream.destroyed) stream.destroy(error);
    session.destroy();
    // The session's own destroy waits for a stuck write; the socket's cancels it.
    socket.destroy();
  };
  const checkProgress = () => {
    if (socket.destroyed) return;
    const now = moved();
    if (now === bytesMoved && allAnswered()) return cut();
    bytesMoved = now;
    stallTimer = setTimeout(checkProgress, CLOSING_STALL_MS).unref();
  };
  /** Watches a session Warden is closing (idle or draining) for progress, once. */
  const watchProgress = () => {
    if (stallTimer !== undefined || socket.destroyed) return;
    bytesMoved = moved();
    stallTimer = setTimeout(checkProgress, CLOSING_STALL_MS).unref();
  };
  /** socket.bytesRead when the PING in flight went out; -1 when none is. */
  let readAtPing = -1;
  let movedAtProbe = 0;
  let probeTimer: NodeJS.Timeout | undefined;
  const onPingAck = (err: Error | null) => {
    if (err === null) readAtPing = -1;
  };
  const ping = (): boolean => {
    try {
      if (!session.ping(onPingAck)) return false;
    } catch {
      return false;
    }
    readAtPing = socket.bytesRead;
    return true;
  };
  const probe = () => {
    probeTimer = undefined;
    // A session Warden closes refuses PINGs: checkProgress watches it instead.
    if (streams.size === 0 || socket.destroyed || session.destroyed || session.closed) return;
    if (readAtPing !== -1) {
      if (socket.bytesRead === readAtPing) {
        limits.onUnresponsive(streams.size);
        return cut();
      }
      // Unanswered, but the session still reads: not the state above. Asked again at the next tick.
      readAtPing = socket.bytesRead;
    } else if (moved() === movedAtProbe && !ping()) {
      limits.onUnresponsive(streams.size);
      return cut();
    }
    movedAtProbe = moved();
    probeTimer = setTimeout(probe, LIVENESS_PROBE_MS).unref();
  };
  const close = () => {
    if (!session.closed && !session.destroyed) session.close();
    watchProgress();
  };
  const arm = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(close, idleMs).unref();
  };
  session.on('stream', (stream: ServerHttp2Stream) => {
    streams.add(stream);
    clearTimeout(idleTimer);
    sendTimer ??= setTimeout(sweep, sendTimeoutMs).unref();
    if (probeTimer === undefined) {
      movedAtProbe = moved();
      probeTimer = setTimeout(probe, LIVENESS_PROBE_MS).unref();
    }
    stream.once('close', () => {
      streams.delete(stream);
      if (streams.size > 0) return;
      // The probe timer is left to run out (it stops itself with no stream open): a client sending
      // one request at a time would otherwise set and clear a timer per request.
      readAtPing = -1;
      if (closing) close();
      else arm();
    });
  });
  const stop = () => {
    clearTimeout(idleTimer);
    clearTimeout(stallTimer);
    clearTimeout(sendTimer);
    clearTimeout(probeTimer);
  };
  session.once('close', stop);
  socket.once('close', stop);
  arm();
  return {
    closeWhenIdle() {
      closing = true;
      if (streams.size === 0) close();
      else watchProgress();
    },
    closeNow() {
      closing = true;
      close();
    },
  };
}
