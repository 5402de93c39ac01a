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
 * At most `maxConnections`, and `maxConnectionsPerAddress` from one network (an IPv6 /64 counts as
 * one). At the listener's bound the oldest connection without a request in flight makes room:
 * refusing the newcomer let 32 silent connections from each of 8 addresses shut out the kubelet's
 * probes, Prometheus and the backend's JWKS fetches. Node's headersTimeout starts at a request's
 * first byte, so a connection that sends none gets a socket timeout until its first request
 * (Node's own timeout listener then destroys it), cleared per request: a console feed is quiet for
 * 15 s at a time. (The server's own headersTimeout and requestTimeout are set by its creator.)
 */
export function boundConnections(server: Server, limits: AdminLimits): void {
  /** Each open connection's network, and whether a request is in flight on it. */
  const open = new Map<Socket, { network: string; busy: boolean }>();
  server.prependListener('request', (req: IncomingMessage, res) => {
    req.socket.setTimeout(0);
    const entry = open.get(req.socket);
    if (!entry) return;
    entry.busy = true;
    res.once('close', () => (entry.busy = false));
  });
  server.on('connection', (socket: Socket) => {
    const network = clientNetworkOf(socket.remoteAddress ?? '');
    let held = 0;
    let idle: Socket | undefined;
    for (const [s, e] of open) {
      if (e.network === network) held++;
      if (!e.busy) idle ??= s;
    }
    if (held >= limits.maxConnectionsPerAddress) return void socket.destroy();
    if (open.size >= limits.maxConnections) {
      if (!idle) return void socket.destroy();
      open.delete(idle);
      idle.destroy();
    }
    open.set(socket, { network, busy: false });
    socket.setTimeout(limits.headersTimeoutMs);
    socket.once('close', () => open.delete(socket));
  });
}
