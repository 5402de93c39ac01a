/**
 * A backend response whose chunked trailers say `Connection: close` (a field RFC 9110 §6.5.1 keeps
 * out of trailers; a backend relaying another service's trailers may send it): its connection is
 * not reused. undici decides keep-alive from the head alone and put the connection back in the
 * pool, while llhttp marked it closed: the next request on it, from any caller, ran at the backend
 * and its caller got 502 ERR_UPSTREAM_PROTOCOL ("Data after Connection: close"), a POST that took
 * effect reported failed (red team 26, F2).
 */
import t from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { request } from 'undici';
import { testAgent } from '../support/clients.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';

/** /trailers?connection=V ends with trailers (Connection: V among them); anything else: its method and path. */
async function trailingBackend(t: Teardown): Promise<{ url: string; seen: string[]; connections: () => number }> {
  const seen: string[] = [];
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://backend');
      if (url.pathname !== '/trailers') return void res.end(`${req.method} ${url.pathname}`);
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'grpc-status, connection' });
      res.write('hello');
      res.addTrailers({ 'grpc-status': '0', connection: url.searchParams.get('connection') ?? 'close' });
      res.end();
    });
  });
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, connections: () => connections };
}

t.test('a Connection: close trailer keeps its connection out of reuse: the next caller is answered', async (t) => {
  const backend = await trailingBackend(t);
  // One connection: the next request would go on the same one.
  const s = await startTestSidecar(t, backend.url, { upstream: { connections: 1 } });
  for (const value of ['close', 'Keep-Alive, CLOSE']) {
    const a = testAgent(s.ca);
    const b = testAgent(s.ca);
    t.teardown(() => Promise.all([a.destroy(), b.destroy()]));
    const first = await request(`${s.url}/trailers?connection=${encodeURIComponent(value)}`, { dispatcher: a });
    t.equal(first.statusCode, 200, `${value}: caller A gets 200`);
    t.equal(await first.body.text(), 'hello', `${value}: and its body`);
    // Another caller, a request that takes effect.
    const next = await request(`${s.url}/orders`, {
      dispatcher: b,
      method: 'POST',
      body: '{"pay":1}',
      headers: { 'content-type': 'application/json' },
    });
    const text = await next.body.text();
    t.equal(next.statusCode, 200, `${value}: caller B's POST is answered 200, not 502 (${text.slice(0, 80)})`);
    t.equal(text, 'POST /orders', `${value}: with the backend's answer`);
  }
  t.equal(backend.seen.filter((u) => u === 'POST /orders').length, 2, 'each POST ran once');
  t.notOk(
    s.events.some((e) => e.name === 'warden.upstream.failed'),
    'no upstream failure',
  );
});

t.test('trailers without Connection: close leave the connection kept alive', async (t) => {
  const backend = await trailingBackend(t);
  const s = await startTestSidecar(t, backend.url, { upstream: { connections: 1 } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.destroy());
  const first = await request(`${s.url}/trailers?connection=keep-alive`, { dispatcher: agent });
  t.equal(await first.body.text(), 'hello');
  const next = await request(`${s.url}/orders`, { dispatcher: agent });
  t.equal(next.statusCode, 200);
  t.equal(await next.body.text(), 'GET /orders');
  t.equal(backend.connections(), 1, 'one backend connection served both');
});
