/**
 * Busy connections must not shut the admin listener's probes out. Trickled `POST /tokens/revoke`
 * bodies (a byte at a time, each connection busy for the listener's 10 s request timeout) from 8
 * loopback addresses, 32 each, held all 256 places: at the bound only an idle connection made room,
 * so /healthz, /readyz, /metrics and the JWKS were refused for as long as the attacker reopened
 * them (52 of 60 probes over 30 s). Real sockets, the real admin server, small bounds.
 */
import t, { type Test } from 'tap';
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { createEventFeed } from '../../src/console/event-feed.js';
import type { TokenRuntime } from '../../src/identity/token-runtime.js';
import { startAdminServer, type AdminServer } from '../../src/proxy/admin.js';
import { JWKS_PATH, tokenAdminEndpoints } from '../../src/proxy/token-endpoints.js';

const LIMITS = { maxConnections: 16, maxConnectionsPerAddress: 4, headersTimeoutMs: 10_000, requestTimeoutMs: 10_000 };
const PROBES = ['/healthz', '/readyz', '/metrics', JWKS_PATH];
const TRICKLED =
  'POST /tokens/revoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nt';

/** Only the JWKS is read: the trickled bodies never reach a revocation. */
const runtime = { jwksJson: () => '{"keys":[]}', revoke: () => Promise.reject(new Error('not reached')) } as unknown as TokenRuntime;

async function startAdmin(t: Test): Promise<{ admin: AdminServer; feed: ReturnType<typeof createEventFeed> }> {
  const feed = createEventFeed();
  const endpoints = tokenAdminEndpoints(runtime);
  const admin = await startAdminServer({
    host: '127.0.0.1',
    port: 0,
    registry: new Registry(),
    readiness: [],
    endpoints: () => endpoints,
    console: { feed, status: () => Promise.reject(new Error('unused')) },
    limits: LIMITS,
  });
  t.teardown(async () => {
    feed.close();
    await admin.close();
  });
  return { admin, feed };
}

interface Held {
  socket: Socket;
  received: string;
  closed: Promise<number>;
}

/** Opens a connection from `localAddress`, sends `head`, and keeps what comes back; `closed` resolves with ms to close. */
function hold(t: Test, port: number, localAddress: string, head: string): Promise<Held> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    t.teardown(() => socket.destroy());
    const held: Held = { socket, received: '', closed: new Promise((r) => socket.once('close', () => r(Date.now() - started))) };
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => (held.received += d.toString()));
    socket.once('connect', () => {
      socket.write(head);
      // Long enough for the server to have read the headers (the request is then in flight).
      setTimeout(() => resolve(held), 20);
    });
  });
}

/** A byte a second, as the attack sent them, until the connection ends. */
function trickle(held: Held): void {
  const timer = setInterval(() => (held.socket.writable ? held.socket.write('o') : clearInterval(timer)), 1000);
  timer.unref();
  void held.closed.then(() => clearInterval(timer));
}

/** GET `path` on a connection of its own; the status, or 0 when the connection was refused or cut. */
function probe(port: number, path: string, localAddress = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path, localAddress, agent: false, timeout: 3000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

t.test('probes, scrapes and JWKS fetches are served while every place is held by a trickled revocation', async (t) => {
  const { admin, feed } = await startAdmin(t);
  const port = admin.address.port;
  // Two operators' console feeds first (the oldest connections): never closed to make room.
  const feeds = [
    await hold(t, port, '127.0.0.6', 'GET /console/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'),
    await hold(t, port, '127.0.0.7', 'GET /console/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'),
  ];
  // The other 14 places: trickled revocations from four addresses.
  const attackers: Held[] = [];
  for (const [i, address] of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'].entries()) {
    for (let n = 0; n < (i < 2 ? 4 : 3); n++) attackers.push(await hold(t, port, address, TRICKLED));
  }
  attackers.forEach(trickle);

  const answers = [];
  for (const path of PROBES) answers.push(`${path} ${await probe(port, path)}`);
  t.same(
    answers,
    PROBES.map((p) => `${p} 200`),
    'each probe is served at the listener bound, within the revocations’ first second',
  );
  await new Promise((r) => setTimeout(r, 50));
  t.ok(attackers[0]?.socket.destroyed, 'the revocation longest in flight made room');

  feed.sink('warden.traffic.shed', 'warn', { 'warden.rule': 'test.marker' });
  await new Promise((r) => setTimeout(r, 100));
  for (const [i, f] of feeds.entries()) {
    t.ok(f.socket.readyState === 'open' && f.received.includes('test.marker'), `console feed ${i + 1} still open and fed`);
  }
});

t.test('one address holding its every place with trickled revocations does not shut out another client on it', async (t) => {
  // 127.0.0.1 is the backend's (its JWKS fetch) and an exec probe's address too.
  const { admin } = await startAdmin(t);
  const port = admin.address.port;
  const attackers: Held[] = [];
  for (let n = 0; n < LIMITS.maxConnectionsPerAddress; n++) attackers.push(await hold(t, port, '127.0.0.1', TRICKLED));
  attackers.forEach(trickle);
  t.equal(await probe(port, '/healthz'), 200, 'a probe from the same address is served');
  t.equal(await probe(port, JWKS_PATH), 200, 'so is a JWKS fetch');
  await new Promise((r) => setTimeout(r, 50));
  t.ok(attackers[0]?.socket.destroyed, "the address's longest request made room");
});

t.test('a revocation body must arrive within 2 s, not the listener’s 10 s: 408 and the connection closed', async (t) => {
  const { admin } = await startAdmin(t);
  const slow = await hold(t, admin.address.port, '127.0.0.2', TRICKLED);
  trickle(slow);
  const ms = await Promise.race([slow.closed, new Promise<number>((r) => setTimeout(() => r(Infinity), 9000))]);
  t.ok(ms >= 1900 && ms < 6000, `closed after ${ms} ms (the request timeout is 10 s)`);
  t.match(slow.received, /^HTTP\/1\.1 408 /, '408');
  t.match(slow.received, /"code":"ERR_REQUEST_TIMEOUT"/, 'problem+json with its code');
  t.match(slow.received, /connection: close/i, 'and Connection: close');
});

t.test(
  'a connection that has not sent its request yet is the last to make room (the review: it was the first, being the only idle one)',
  async (t) => {
    const { admin } = await startAdmin(t);
    const port = admin.address.port;
    // One address at its bound: three trickled revocations, then a client connected but not yet asking.
    const attackers: Held[] = [];
    for (let n = 0; n < LIMITS.maxConnectionsPerAddress - 1; n++) attackers.push(await hold(t, port, '127.0.0.2', TRICKLED));
    attackers.forEach(trickle);
    const waiting = await hold(t, port, '127.0.0.2', '');
    // A newcomer from the address: room is made by a busy revocation, not by the client about to ask.
    const newcomer = await hold(t, port, '127.0.0.2', TRICKLED);
    trickle(newcomer);
    await new Promise((r) => setTimeout(r, 50));
    t.notOk(waiting.socket.destroyed, 'the fresh connection is kept');
    t.ok(attackers[0]?.socket.destroyed, 'the revocation longest in flight made room');
    waiting.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await new Promise((r) => setTimeout(r, 100));
    t.match(waiting.received, /^HTTP\/1\.1 200 /, 'and its request is answered');
  },
);
