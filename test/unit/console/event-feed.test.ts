/**
 * The console event feed's places: 16 in all, 4 per client network, and all of loopback is one
 * network (a local user could bind 127.0.0.2..5 and hold every place). Off loopback the listener
 * takes any address; this checks the counting with stand-in requests from such addresses. And its
 * memory: the bytes queued for a client that never reads, backlog included; HEAD over a real socket.
 */
import t, { type Test } from 'tap';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEventFeed } from '../../../src/console/event-feed.js';
import { createEventBus, type EventAttributes, type EventName } from '../../../src/telemetry/events.js';

function setUp(t: Test) {
  const raised: (EventAttributes & { name: EventName })[] = [];
  const feed = createEventFeed(createEventBus([(name, _severity, attributes) => raised.push({ name, ...attributes })]));
  t.teardown(() => feed.close());
  /** A client that never reads: what is queued for it only grows (writableLength), until it is destroyed. */
  const stuck = (address: string) => {
    const req = { socket: { remoteAddress: address }, method: 'GET', on: () => req } as unknown as IncomingMessage;
    const client = { status: 0, queued: 0, destroyed: false };
    const res = {
      req,
      get writableLength() {
        return client.queued;
      },
      writeHead: (s: number) => void (client.status = s),
      write: (chunk: string) => {
        if (!client.destroyed) client.queued += Buffer.byteLength(chunk);
        return true;
      },
      end: () => undefined,
      destroy: () => void (client.destroyed = true),
    } as unknown as ServerResponse;
    feed.serve(req, res);
    return client;
  };
  /** A GET /console/events from `address`: the status it was answered. */
  const open = (address: string): number => stuck(address).status;
  return { open, stuck, raised, feed };
}

t.test('all of loopback is one network: 4 places, whichever loopback address', async (t) => {
  const { open, raised } = setUp(t);
  t.same(
    ['127.0.0.2', '127.0.0.3', '::1', '::ffff:127.0.0.4'].map(open),
    [200, 200, 200, 200],
    'four from loopback, each from an address of its own',
  );
  t.equal(open('127.0.0.5'), 503, 'a fifth from yet another loopback address: 503');
  t.equal(open('10.0.0.1'), 200, 'another network still has its places');
  t.match(raised, [
    { name: 'warden.traffic.shed', 'client.address': '127.0.0.5', 'warden.rule': 'console.clients', 'warden.code': 'ERR_OVERLOADED' },
  ]);
  t.equal(raised.length, 1, 'one event per refusal');
});

t.test('16 in all: four networks of four, then the 17th is refused with its event', async (t) => {
  const { open, raised } = setUp(t);
  for (let n = 1; n <= 4; n++) for (let i = 0; i < 4; i++) t.equal(open(`10.0.${n}.${i + 1}`), 200);
  t.equal(open('10.0.1.9'), 503, 'a fifth from 10.0.1.9: its own network is not full, but all 16 are taken');
  t.equal(open('2001:db8::1'), 503, 'and from an IPv6 client');
  t.match(raised, [{ 'warden.detail': /At most 16 console clients at once/ }, { 'client.address': '2001:db8::1' }]);
});

/** A security event of `detailBytes` characters of detail, handed to the feed's sink as it is (as a future source might). */
const bigEvent = (detailBytes: number): EventAttributes => ({ 'client.address': '192.0.2.1', 'warden.detail': 'x'.repeat(detailBytes) });

t.test('the ring is bounded by bytes: a client that reads is sent at most 512 KiB of backlog, not 200 large events', async (t) => {
  const { stuck, feed } = setUp(t);
  for (let i = 0; i < 200; i++) feed.sink('warden.input.xss', 'warn', bigEvent(50_000));
  const client = stuck('10.0.0.1');
  t.equal(client.status, 200);
  t.ok(client.queued <= 512 * 1024 + 64, `backlog of ${client.queued} bytes (10 MB before)`);
  t.ok(client.queued > 400 * 1024, 'and the newest events are in it');
});

t.test('a client that never reads: its backlog and live events together stay under 1 MiB and a frame, then it is dropped', async (t) => {
  const { stuck, feed } = setUp(t);
  // A ring of small events (not over the ring's bytes) that is still more than the client's bound.
  for (let i = 0; i < 200; i++) feed.sink('warden.input.xss', 'warn', bigEvent(2_000));
  const clients = [stuck('10.0.0.1'), stuck('10.0.1.1'), stuck('10.0.2.1'), stuck('10.0.3.1')];
  for (let i = 0; i < 400; i++) feed.sink('warden.input.xss', 'warn', bigEvent(20_000));
  for (const [i, client] of clients.entries()) {
    t.ok(client.queued <= 1024 * 1024 + 21_000, `client ${i}: ${client.queued} bytes queued at most`);
    t.ok(client.destroyed, `client ${i}: dropped`);
  }
});

t.test('the backlog goes through the same bound: a client already behind is not written the whole ring', async (t) => {
  const { feed } = setUp(t);
  for (let i = 0; i < 200; i++) feed.sink('warden.input.xss', 'warn', bigEvent(2_000));
  let written = 0;
  const req = { socket: { remoteAddress: '10.0.0.1' }, method: 'GET', on: () => req } as unknown as IncomingMessage;
  // A response whose socket already holds 2 MiB it could not send.
  const res = {
    req,
    writableLength: 2 * 1024 * 1024,
    writeHead: () => undefined,
    write: (chunk: string) => void (written += Buffer.byteLength(chunk)),
    end: () => undefined,
    destroy: () => undefined,
  } as unknown as ServerResponse;
  feed.serve(req, res);
  t.ok(written < 100, `${written} bytes written after the head (the whole ring, ~400 KB, before)`);
});

t.test('HEAD /console/events is answered at once and holds no place', async (t) => {
  const feed = createEventFeed();
  const server = http.createServer((req, res) => feed.serve(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    feed.close();
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as AddressInfo;
  const request = (method: string) =>
    new Promise<number>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, method, path: '/console/events', agent: false }, (res) => {
        resolve(res.statusCode ?? 0);
        if (method === 'HEAD') res.resume();
      });
      req.setTimeout(1000, () => {
        req.destroy();
        resolve(0);
      });
      req.on('error', () => resolve(0));
      req.end();
    });
  for (let i = 0; i < 5; i++) t.equal(await request('HEAD'), 200, `HEAD ${i + 1}: answered (never, before)`);
  t.equal(await request('GET'), 200, 'the operator’s GET still has a place');
});
