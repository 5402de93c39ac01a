/**
 * The admin listener's connections, bounded. It had no bounds (Node's defaults: no connection cap,
 * 60 s for headers, checked every 30 s, and none at all for a connection that sends no byte):
 * 15 000 idle connections from one client took ~96 MiB, and past the file-descriptor limit the
 * inbound listener, /healthz and CRL refreshes failed too. Its requests are small and quick;
 * probes, scrapes and a few consoles need few connections.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { clientNetworkOf } from '../net/client-network.js';

export interface AdminLimits {
  readonly maxConnections: number;
  /** One address (a pod, a host; an IPv6 /64) holds at most this many. */
  readonly maxConnectionsPerAddress: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

export const ADMIN_LIMITS: AdminLimits = {
  maxConnections: 256,
  maxConnectionsPerAddress: 32,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
};

/**
 * Since when a connection has held its place without finishing a request (ms: from its opening,
 * or from its request's start), `between` requests (kept alive after an answer), or a `stream` the
 * listener keeps (a console feed, bounded by its own caps and never closed to make room).
 */
type Holding = number | 'between' | 'stream';
type Use = { readonly network: string; holding: Holding };

/**
 * At most `maxConnections`, and `maxConnectionsPerAddress` from one network (an IPv6 /64 counts as
 * one). At either bound a newcomer is served and makes room: at its network's bound, that
 * network's oldest connection; at the listener's, the listener's (see `oldest`). Refusing the
 * newcomer let 32 silent connections from each of 8 addresses shut out the kubelet's probes,
 * Prometheus and the backend's JWKS fetches; sparing busy ones let 32 trickled `POST
 * /tokens/revoke` bodies from each (reopened as they ended) do the same, and one address's own 32
 * shut out every other client on it (127.0.0.1: the backend, exec probes).
 * A connection that sends nothing also gets a socket timeout until its first request (Node's own
 * timeout listener then destroys it), cleared per request: a console feed is quiet for 15 s at a
 * time. Node 20's headersTimeout check covers such a connection too (a 408, then close), but only
 * at its checking interval; whichever comes first closes it. (The server's own headersTimeout and
 * requestTimeout are set by its creator.)
 */
export function boundConnections(server: Server, limits: AdminLimits, isStream: (req: IncomingMessage) => boolean): void {
  const open = new Map<Socket, Use>();
  server.prependListener('request', (req: IncomingMessage, res) => {
    req.socket.setTimeout(0);
    const use = open.get(req.socket);
    if (!use) return;
    use.holding = isStream(req) ? 'stream' : Date.now();
    res.once('close', () => (use.holding = 'between'));
  });
  server.on('connection', (socket: Socket) => {
    const network = clientNetworkOf(socket.remoteAddress ?? '');
    let held = 0;
    for (const use of open.values()) if (use.network === network) held++;
    const scope = held >= limits.maxConnectionsPerAddress ? network : open.size >= limits.maxConnections ? 'all' : undefined;
    if (scope !== undefined) {
      const room = oldest(open, scope);
      if (!room) return void socket.destroy();
      open.delete(room);
      room.destroy();
    }
    open.set(socket, { network, holding: Date.now() });
    socket.setTimeout(limits.headersTimeoutMs);
    socket.once('close', () => open.delete(socket));
  });
}

/**
 * In `scope` (a network, or 'all'): a connection between requests (kept alive after one), the first
 * opened; else the one that has held its place longest without finishing a request — since it
 * opened, if it has sent none, or since its request started; never a stream. A probe that has just
 * connected or just sent its request is the newest of all (fresh connections kept last instead let
 * a churn of silent connections close a probe in flight).
 */
function oldest(open: ReadonlyMap<Socket, Use>, scope: string): Socket | undefined {
  let longest: Socket | undefined;
  let since = Infinity;
  for (const [socket, use] of open) {
    if (scope !== 'all' && use.network !== scope) continue;
    if (use.holding === 'between') return socket;
    if (use.holding !== 'stream' && use.holding < since) [longest, since] = [socket, use.holding];
  }
  return longest;
}
