/**
 * The lingering close's own bounds (linger.ts), as proxy.md states them: 5 s quiet (less with a
 * shorter idle_timeout), 30 s in all (less with a shorter request_timeout), max_body_bytes thrown
 * away (at least 1 MiB), and a quarter of max_connections lingering at once — past that, closed at
 * once as before. Real loopback sockets.
 */
import t from 'tap';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { linger, lingerLimits } from '../../../src/proxy/linger.js';

t.test('lingerLimits: the documented bounds', async (t) => {
  const limits = { idle_timeout: 60_000, request_timeout: 300_000, max_body_bytes: 10, max_connections: 1000 };
  t.match(lingerLimits(limits), { quietMs: 5_000, totalMs: 30_000, maxBytes: 1024 * 1024, slots: { lingering: 0, max: 250 } });
  t.match(lingerLimits({ ...limits, idle_timeout: 2_000, request_timeout: 10_000, max_body_bytes: 8 << 20, max_connections: 2 }), {
    quietMs: 2_000,
    totalMs: 10_000,
    maxBytes: 8 << 20,
    slots: { max: 1 },
  });
});

t.test('linger: past its slots a socket is not lingered (the caller closes it at once); a slot is given back on close', async (t) => {
  const accepted: Socket[] = [];
  const server = createServer((s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const clients = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
  t.teardown(() => clients.forEach((c) => c.destroy()));
  while (accepted.length < 2) await new Promise((r) => setTimeout(r, 5));
  const limits = { quietMs: 5_000, totalMs: 30_000, maxBytes: 1 << 20, slots: { lingering: 0, max: 1 } };
  const discarded: number[] = [];
  const detach = (_socket: Socket, onData: (chunk: Buffer) => void) => {
    _socket.on('data', (chunk: Buffer) => {
      discarded.push(chunk.length);
      onData(chunk);
    });
  };
  const [first, second] = accepted as [Socket, Socket];
  t.equal(linger(first, limits, detach), true, 'the first lingers');
  t.equal(limits.slots.lingering, 1);
  t.equal(linger(second, limits, detach), false, 'the second finds every slot taken: not lingered');
  t.equal(limits.slots.lingering, 1);
  // What the client still sends is read and thrown away; its end ends the linger.
  const [client] = clients as [Socket, Socket];
  client.write(Buffer.alloc(1000));
  client.end();
  await once(first, 'close');
  t.ok(discarded.reduce((a, b) => a + b, 0) >= 1000, 'the bytes sent meanwhile were read (thrown away)');
  t.equal(limits.slots.lingering, 0, 'its slot given back');
  t.equal(linger(second, limits, detach), true, 'and the next one lingers');
  second.destroy();
});

t.test('linger: a client sending past maxBytes is cut off', async (t) => {
  const accepted: Socket[] = [];
  const server = createServer((s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  // Half-open allowed: a client that goes on sending after the sidecar's FIN (as nginx writing a body does).
  const client = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1', allowHalfOpen: true });
  client.on('error', () => undefined);
  t.teardown(() => client.destroy());
  while (accepted.length < 1) await new Promise((r) => setTimeout(r, 5));
  const socket = accepted[0] as Socket;
  // Quiet and total timers far off: only the byte cap can end it within the 2 s waited below.
  const limits = { quietMs: 60_000, totalMs: 60_000, maxBytes: 64 * 1024, slots: { lingering: 0, max: 4 } };
  t.equal(
    linger(socket, limits, (s, onData) => s.on('data', onData)),
    true,
  );
  const closed = once(socket, 'close');
  for (let i = 0; i < 8 && !client.destroyed; i++) client.write(Buffer.alloc(32 * 1024));
  const cut = await Promise.race([closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 2000))]);
  t.equal(cut, true, 'destroyed past 64 KiB thrown away');
  socket.destroy();
  t.equal(limits.slots.lingering, 0);
});
