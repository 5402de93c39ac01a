/**
 * The CA's connection limits: at most `maxConnections` open, and at most `perClient` of them from one
 * client address. Without the per-client share one client holding 1 024 silent TCP connections (each
 * cut at the handshake timeout and reopened) locked every sidecar out of the CRL and enrollment.
 * Refusals are logged at warn, at most one line per interval with the number refused since.
 */
import type { Server, Socket } from 'node:net';
import type { Logger } from '../telemetry/logger.js';

export interface ConnectionLimits {
  maxConnections: number;
  perClient: number;
  /** At most one warn line per this interval per reason (default 10 s). */
  logIntervalMs?: number;
}

type Reason = 'max_connections' | 'per_client';

/** Applies the limits to `server`; returns the function that stops its log timer. */
export function limitConnections(server: Server, limits: ConnectionLimits, logger: Logger): () => void {
  const log = dropLog(logger, limits.logIntervalMs ?? 10_000);
  server.maxConnections = limits.maxConnections;
  server.on('drop', (data?: { remoteAddress?: string }) => log.refused('max_connections', clientOf(data?.remoteAddress)));
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const client = clientOf(socket.remoteAddress);
    const count = open.get(client) ?? 0;
    if (count >= limits.perClient) {
      log.refused('per_client', client);
      socket.destroy();
      return;
    }
    open.set(client, count + 1);
    socket.once('close', () => {
      const left = (open.get(client) ?? 1) - 1;
      if (left === 0) open.delete(client);
      else open.set(client, left);
    });
  });
  return log.stop;
}

/** One client for an IPv4 address seen as IPv4 or IPv4-mapped IPv6 (a dual-stack listener). */
function clientOf(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

const MESSAGES: Record<Reason, string> = {
  max_connections: 'connections refused: the CA holds its maximum number of connections',
  per_client: 'connections refused: the client holds its maximum number of connections to the CA',
};

/** The first refusal is logged at once; those that follow within the interval as one line with a count. */
function dropLog(logger: Logger, intervalMs: number) {
  const pending = new Map<Reason, { count: number; clients: Set<string> }>();
  let timer: NodeJS.Timeout | undefined;
  const write = (reason: Reason, count: number, clients: Iterable<string>) =>
    logger.warn({ reason, refused: count, 'client.address': [...clients].slice(0, 10).join(',') }, MESSAGES[reason]);
  const flush = () => {
    timer = undefined;
    if (pending.size === 0) return;
    for (const [reason, { count, clients }] of pending) write(reason, count, clients);
    pending.clear();
    timer = setTimeout(flush, intervalMs).unref();
  };
  return {
    refused(reason: Reason, client: string) {
      if (timer === undefined) {
        write(reason, 1, [client]);
        timer = setTimeout(flush, intervalMs).unref();
        return;
      }
      const entry = pending.get(reason) ?? { count: 0, clients: new Set<string>() };
      entry.count++;
      if (entry.clients.size < 10) entry.clients.add(client);
      pending.set(reason, entry);
    },
    stop: () => clearTimeout(timer),
  };
}
