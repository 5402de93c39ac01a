/**
 * Open-stream bookkeeping for one inbound HTTP/2 session: the idle timeout, closing when idle
 * (draining), and destroying a session that Warden is closing once it stops making progress.
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
  const checkProgress = () => {
    if (socket.destroyed) return;
    const now = moved();
    if (now === bytesMoved && allAnswered()) {
      session.destroy();
      // The session's own destroy waits for the stuck write; the socket's cancels it.
      socket.destroy();
      return;
    }
    bytesMoved = now;
    stallTimer = setTimeout(checkProgress, CLOSING_STALL_MS).unref();
  };
  /** Watches a session Warden is closing (idle or draining) for progress, once. */
  const watchProgress = () => {
    if (stallTimer !== undefined || socket.destroyed) return;
    bytesMoved = moved();
    stallTimer = setTimeout(checkProgress, CLOSING_STALL_MS).unref();
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
    stream.once('close', () => {
      streams.delete(stream);
      if (streams.size > 0) return;
      if (closing) close();
      else arm();
    });
  });
  const stop = () => {
    clearTimeout(idleTimer);
    clearTimeout(stallTimer);
    clearTimeout(sendTimer);
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
