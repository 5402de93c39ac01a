/**
 * A response whose chunked trailers say `Connection: close` ends its connection. undici decides
 * keep-alive from the head alone (client-h1.js onHeadersComplete) and put such a connection back in
 * the pool, while llhttp had marked it closed: the next request on it, from any caller, ran at the
 * backend and its caller got 502 ("Data after Connection: close"), a POST that took effect
 * reported failed (red team 26, F2). RFC 9110 §6.5.1 keeps the field out of trailers, but a backend
 * relaying another service's trailers may pass it on.
 *
 * The handler cannot do it: undici marks a request completed before its onResponseEnd, and
 * controller.abort is then a no-op, and no handler hook names the socket. undici's documented
 * diagnostics channels do: `undici:client:sendHeaders` gives the request's socket, and
 * `undici:request:trailers` its trailers, in the parser's callback, before undici takes the next
 * request off its queue (a turn later, setImmediate), which then sees the socket destroyed and
 * waits for a new connection. Channels are process-wide: every undici client (egress's pools, the
 * IdP's) is held to the same rule, which is right for each.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';

const SOCKET = Symbol('warden.socket');

interface ChannelRequest {
  [SOCKET]?: Socket;
}

function onSendHeaders(message: unknown): void {
  const { request, socket } = message as { request: ChannelRequest; socket: Socket };
  request[SOCKET] = socket;
}

function onTrailers(message: unknown): void {
  const { request, trailers } = message as { request: ChannelRequest; trailers: (Buffer | string)[] };
  // Almost every response has none.
  if (trailers.length === 0) return;
  const socket = request[SOCKET];
  if (socket !== undefined && namesConnectionClose(trailers)) socket.destroy();
}

/**
 * The raw trailers (name, value, …) hold a `connection` field with a `close` token, as llhttp
 * reads it (case-insensitive, comma-separated). Linear in their size, which undici bounds as it
 * bounds the head (maxHeaderSize, 16 KiB).
 */
function namesConnectionClose(raw: readonly (Buffer | string)[]): boolean {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as Buffer | string;
    if (name.length !== 10 || name.toString().toLowerCase() !== 'connection') continue;
    const value = (raw[i + 1] as Buffer | string).toString().toLowerCase();
    if (!value.includes('close')) continue;
    for (const token of value.split(',')) if (token.trim() === 'close') return true;
  }
  return false;
}

let installed = false;

/** Subscribes once per process (createPool calls it for each pool). */
export function closeConnectionsOnTrailer(): void {
  if (installed) return;
  installed = true;
  subscribe('undici:client:sendHeaders', onSendHeaders);
  subscribe('undici:request:trailers', onTrailers);
}
