/**
 * Lingering close of an HTTP/1.1 connection that the sidecar ends while its client may still be
 * sending (a refusal of a request whose body is still arriving, requests pipelined behind the last
 * answer): RFC 9112 §9.6. Destroying the socket with unread bytes in the kernel's receive queue
 * makes the kernel answer them with RST, and a reset erases the answer from a client that has not
 * read it yet: nginx, Apache and Caddy, which write a whole request body before reading, answered
 * 502 instead of the 403/404/413, HAProxy's clients got nothing, and nginx marked the replica failed
 * (red team 28, F1). As nginx does (lingering_close, lingering_timeout, lingering_time): our side
 * ends (TLS close_notify, then FIN), what the client still sends is read and thrown away, never
 * parsed, and the socket is destroyed once the client ends its side, or after a quiet period, a
 * total time or a number of bytes.
 */
import type { Socket } from 'node:net';

export interface LingerLimits {
  /** Destroyed after this long without a byte from the client (nginx lingering_timeout 5 s). */
  quietMs: number;
  /** Destroyed this long after the linger began, whatever the client sends (nginx lingering_time 30 s). */
  totalMs: number;
  /** Destroyed once this many bytes were thrown away. */
  maxBytes: number;
  /** Sockets lingering now, over the listener; beyond `max` a connection is closed at once, as before. */
  slots: { lingering: number; max: number };
}

const QUIET_MS = 5_000;
const TOTAL_MS = 30_000;
const MIN_BYTES = 1024 * 1024;

/**
 * The listener's linger bounds: quiet at most 5 s (less with a shorter idle_timeout), 30 s in all
 * (less with a shorter request_timeout), at most max_body_bytes thrown away (at least 1 MiB: a
 * body refused by Content-Length is often far larger than a route's limit), and a quarter of
 * max_connections lingering at once.
 */
export function lingerLimits(limits: {
  idle_timeout: number;
  request_timeout: number;
  max_body_bytes: number;
  max_connections: number;
}): LingerLimits {
  return {
    quietMs: Math.min(QUIET_MS, limits.idle_timeout),
    totalMs: Math.min(TOTAL_MS, limits.request_timeout > 0 ? limits.request_timeout : TOTAL_MS),
    maxBytes: Math.max(MIN_BYTES, limits.max_body_bytes),
    slots: { lingering: 0, max: Math.max(1, Math.floor(limits.max_connections / 4)) },
  };
}

/**
 * Ends `socket` in stages; false (nothing done) when every slot is taken. `detach` takes node:http's
 * parser off the socket (nothing read from now on is parsed as a request) and hands what is read
 * to `onData` instead.
 */
export function linger<S extends Socket>(
  socket: S,
  limits: LingerLimits,
  detach: (socket: S, onData: (chunk: Buffer) => void) => void,
): boolean {
  const slots = limits.slots;
  if (slots.lingering >= slots.max) return false;
  slots.lingering++;
  let discarded = 0;
  const destroy = () => socket.destroy();
  const total = setTimeout(destroy, limits.totalMs).unref();
  detach(socket, (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > limits.maxBytes) socket.destroy();
  });
  socket.once('end', destroy);
  socket.setTimeout(limits.quietMs, destroy);
  socket.once('close', () => {
    clearTimeout(total);
    slots.lingering--;
  });
  socket.end();
  socket.resume();
  return true;
}
