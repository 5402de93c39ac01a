/**
 * Egress connections retire before the destination's certificate expires. OpenSSL checks that
 * certificate at the handshake only, so a kept-alive connection would go on using an expired
 * destination; destroying it exactly at notAfter cut the requests in flight on it (the destination
 * had run them, the backend got 502, and undici does not retry).
 *
 * A connection takes no new request from `notAfter - margin` on (margin: a tenth of the
 * certificate's lifetime, at most 30 s): it is closed at once if idle, else as soon as its request
 * ends, and the next call opens a new connection, a full handshake that sees the destination's
 * renewed certificate. Whatever is still open at notAfter + EXPIRED_GRACE_MS is destroyed. So no
 * request is ever written on a connection whose destination certificate has expired.
 *
 * Per connection, not by rebuilding the service's pool: calls queued in an old pool are written
 * on its connections whenever they free up, expired or not, and one certificate near its end
 * would churn all of a service's connections.
 */
import type { TLSSocket } from 'node:tls';
import { Client, type buildConnector, type Dispatcher } from 'undici';

export const RETIRE_MARGIN_MAX_MS = 30_000;
export const RETIRE_MARGIN_FRACTION = 0.1;
/** How long a request in flight at notAfter (started before the margin) may still be answered. */
export const EXPIRED_GRACE_MS = 5_000;
/** The longest a timer can wait (~24.8 days); a later moment is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** When a connection to a certificate valid from `notBefore` to `notAfter` (ms) stops taking requests. */
export function retireAt(notBefore: number, notAfter: number): number {
  const lifetime = Math.max(0, notAfter - notBefore);
  return notAfter - Math.min(RETIRE_MARGIN_MAX_MS, lifetime * RETIRE_MARGIN_FRACTION);
}

/** Runs `fn` at `time` (ms since the epoch), unless cancelled. */
function at(time: number, fn: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const wait = () => {
    const left = time - Date.now();
    if (left <= 0) fn();
    else timer = setTimeout(wait, Math.min(left, MAX_TIMER_MS)).unref();
  };
  timer = setTimeout(wait, Math.max(0, Math.min(time - Date.now(), MAX_TIMER_MS))).unref();
  return () => clearTimeout(timer);
}

/**
 * A Pool `factory`: each client's connections retire as above. A client has one connection at a
 * time and, with pipelining 1, one request on it; when that request ends it emits 'drain' before
 * the pool hands it the next call (its listener is added after this one), so a retiring connection
 * is closed there and the call waits for the new connection the client then opens.
 */
export function retiringClient(origin: URL, opts: object): Dispatcher {
  const options = opts as Client.Options & { connect: buildConnector.connector };
  const connect = options.connect;
  const watch = (socket: TLSSocket) => {
    const cert = socket.getPeerCertificate();
    const notAfter = Date.parse(cert.valid_to);
    const notBefore = Date.parse(cert.valid_from);
    if (!Number.isFinite(notAfter)) return; // a verified destination always has one
    let retired = false;
    const closeIfIdle = () => {
      if (retired && client.stats.size === 0) socket.destroy();
    };
    const cancelRetire = at(retireAt(Number.isFinite(notBefore) ? notBefore : notAfter, notAfter), () => {
      retired = true;
      closeIfIdle();
    });
    const cancelExpire = at(notAfter + EXPIRED_GRACE_MS, () => socket.destroy());
    client.prependListener('drain', closeIfIdle);
    socket.once('close', () => {
      cancelRetire();
      cancelExpire();
      client.off('drain', closeIfIdle);
    });
  };
  const client: Client = new Client(origin, {
    ...options,
    connect: (connectOptions, callback) =>
      connect(connectOptions, (...args) => {
        const socket = args[1] as TLSSocket | null;
        if (socket) watch(socket);
        callback(...args);
      }),
  });
  return client;
}
