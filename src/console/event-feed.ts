/**
 * Security events for the admin console: the last events kept in a ring, and each new one pushed
 * to the connected Server-Sent Events clients. Bounded everywhere: the ring (by count and by
 * bytes), the number of clients, and a client that does not read is dropped once MAX_BACKLOG_BYTES
 * are queued for it — the backlog it is sent on connecting counts too.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../errors.js';
import { clientNetworkOf } from '../net/client-network.js';
import { isLoopbackAddress } from '../net/loopback.js';
import { problemBody } from '../pipeline/rescue.js';
import type { EventAttributes, EventBus, EventName, EventSink, Severity } from '../telemetry/events.js';

export interface ConsoleEvent {
  time: string;
  name: EventName;
  severity: Severity;
  attributes: EventAttributes;
}

export interface EventFeed {
  readonly sink: EventSink;
  /** GET /console/events: the backlog, then live events, as text/event-stream (HEAD: the head only). */
  serve(req: IncomingMessage, res: ServerResponse): void;
  close(): void;
}

const RING = 200;
/**
 * The ring's bytes at most: 200 events of 1 MB each (a waf detail before events were cut) held
 * 200 MiB, written again to each new client. Below MAX_BACKLOG_BYTES, so the backlog alone never
 * drops a client that reads.
 */
const MAX_RING_BYTES = 512 * 1024;
const MAX_CLIENTS = 16;
/** One address could hold every place (a same-origin script, a loop of curl). */
const MAX_CLIENTS_PER_ADDRESS = 4;
/**
 * The network a client's places count against: an IPv6 /64 is one (clientNetworkOf), and so is
 * all of loopback: any local user can bind 127.0.0.2, .3, …, and four of them held all 16 places.
 * (Only here: the data plane's rate limits tell loopback addresses apart.)
 */
const networkOf = (address: string): string => (isLoopbackAddress(address) ? 'loopback' : clientNetworkOf(address));
/** Bytes queued for a client beyond which it is considered stuck and dropped. */
const MAX_BACKLOG_BYTES = 1024 * 1024;

/** 503 ERR_OVERLOADED, and its event (warden.traffic.shed) as for any other refusal of that code. */
function refuse(req: IncomingMessage, res: ServerResponse, detail: string, events: EventBus | undefined): void {
  const full = new WardenError('ERR_OVERLOADED', { rule: 'console.clients', detail });
  events?.emit('warden.traffic.shed', {
    'client.address': req.socket.remoteAddress ?? '',
    'http.request.method': req.method ?? 'GET',
    'url.path': '/console/events',
    'http.response.status_code': full.status,
    'warden.code': full.code,
    'warden.action': 'block',
    'warden.rule': 'console.clients',
    'warden.detail': detail,
  });
  res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '5' });
  res.end(problemBody(full, undefined) + '\n');
}

/** `events`: where its own refusals are raised (the bus it is a sink of). */
export function createEventFeed(events?: EventBus): EventFeed {
  const ring: string[] = [];
  let ringBytes = 0;
  const clients = new Set<ServerResponse>();
  const heartbeat = setInterval(() => {
    for (const res of clients) res.write(': keep-alive\n\n');
  }, 15_000);
  heartbeat.unref();

  /** Whether the frame was queued: false when the client had too much queued already (it is dropped). */
  const push = (res: ServerResponse, frame: string): boolean => {
    if (res.writableLength > MAX_BACKLOG_BYTES) {
      clients.delete(res);
      res.destroy();
      return false;
    }
    res.write(frame);
    return true;
  };

  return {
    sink(name, severity, attributes) {
      const event: ConsoleEvent = { time: new Date().toISOString(), name, severity, attributes };
      const frame = `event: security\ndata: ${JSON.stringify(event)}\n\n`;
      ring.push(frame);
      ringBytes += Buffer.byteLength(frame);
      while (ring.length > RING || (ringBytes > MAX_RING_BYTES && ring.length > 0)) ringBytes -= Buffer.byteLength(ring.shift() as string);
      for (const res of clients) push(res, frame);
    },
    serve(req, res) {
      // HEAD: the head, and done. Node sends a HEAD's head only at end(), so a feed left open never
      // answered and held a place: four from loopback kept the operator's console out (503).
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
        res.end();
        return;
      }
      const network = networkOf(req.socket.remoteAddress ?? '');
      let fromAddress = 0;
      for (const c of clients) if (networkOf(c.req.socket.remoteAddress ?? '') === network) fromAddress++;
      if (fromAddress >= MAX_CLIENTS_PER_ADDRESS)
        return refuse(
          req,
          res,
          `At most ${MAX_CLIENTS_PER_ADDRESS} console clients from one address (all of loopback is one) at once; close one first.`,
          events,
        );
      if (clients.size >= MAX_CLIENTS)
        return refuse(req, res, `At most ${MAX_CLIENTS} console clients at once; try again when one has left.`, events);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write('retry: 2000\n\n');
      // Through the same rule as live events: four clients that never read were written the whole ring each.
      for (const frame of ring) if (!push(res, frame)) return;
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
