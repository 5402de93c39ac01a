/**
 * Security events for the admin console: the last events kept in a ring, and each new one pushed
 * to the connected Server-Sent Events clients. Bounded everywhere: the ring, the number of
 * clients, and a client that does not read (its socket buffer full) is dropped, not buffered for.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../errors.js';
import { clientNetworkOf } from '../net/client-network.js';
import { problemBody } from '../pipeline/rescue.js';
import type { EventAttributes, EventName, EventSink, Severity } from '../telemetry/events.js';

export interface ConsoleEvent {
  time: string;
  name: EventName;
  severity: Severity;
  attributes: EventAttributes;
}

export interface EventFeed {
  readonly sink: EventSink;
  /** GET /console/events: the backlog, then live events, as text/event-stream. */
  serve(req: IncomingMessage, res: ServerResponse): void;
  close(): void;
}

const RING = 200;
const MAX_CLIENTS = 16;
/** One address could hold every place (a same-origin script, a loop of curl). */
const MAX_CLIENTS_PER_ADDRESS = 4;
/** Bytes queued for a client beyond which it is considered stuck and dropped. */
const MAX_BACKLOG_BYTES = 1024 * 1024;

function refuse(res: ServerResponse, detail: string): void {
  const full = new WardenError('ERR_OVERLOADED', { rule: 'console.clients', detail });
  res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '5' });
  res.end(problemBody(full, undefined) + '\n');
}

export function createEventFeed(): EventFeed {
  const ring: string[] = [];
  const clients = new Set<ServerResponse>();
  const heartbeat = setInterval(() => {
    for (const res of clients) res.write(': keep-alive\n\n');
  }, 15_000);
  heartbeat.unref();

  const push = (res: ServerResponse, frame: string) => {
    if (res.writableLength > MAX_BACKLOG_BYTES) {
      clients.delete(res);
      res.destroy();
      return;
    }
    res.write(frame);
  };

  return {
    sink(name, severity, attributes) {
      const event: ConsoleEvent = { time: new Date().toISOString(), name, severity, attributes };
      const frame = `event: security\ndata: ${JSON.stringify(event)}\n\n`;
      ring.push(frame);
      if (ring.length > RING) ring.shift();
      for (const res of clients) push(res, frame);
    },
    serve(req, res) {
      // By network, as the admin listener counts connections (an IPv6 /64 is one address).
      const network = clientNetworkOf(req.socket.remoteAddress ?? '');
      let fromAddress = 0;
      for (const c of clients) if (clientNetworkOf(c.req.socket.remoteAddress ?? '') === network) fromAddress++;
      if (fromAddress >= MAX_CLIENTS_PER_ADDRESS)
        return refuse(res, `At most ${MAX_CLIENTS_PER_ADDRESS} console clients from one address at once; close one first.`);
      if (clients.size >= MAX_CLIENTS) return refuse(res, `At most ${MAX_CLIENTS} console clients at once; try again when one has left.`);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write('retry: 2000\n\n');
      for (const frame of ring) res.write(frame);
      clients.add(res);
      req.on('close', () => clients.delete(res));
    },
    close() {
      clearInterval(heartbeat);
      for (const res of clients) res.end();
      clients.clear();
    },
  };
}
