/**
 * A `text/event-stream` response's head goes to the client as it arrives, over HTTP/1.1 and h2:
 * held until the first body bytes (so that a body failing before them is still answered 502,
 * body-fails-before-first-byte.test.ts), an event stream was not seen open until its first event
 * (EventSource `onopen` late), and a first event later than `upstream.timeouts.body` turned the
 * backend's 200 into 504 (red team 26, F3). The body timeout still holds between the head and the
 * first event: a stream silent for longer is cut, so heartbeats must come within it.
 */
import t from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { request } from 'undici';
import { testAgent } from '../support/clients.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';

const BODY_TIMEOUT_MS = 1000;

/** Flushes its head at once, then sends `data: first` after ?after= ms (and ends); ?type= sets the content type. */
async function flushingBackend(t: Teardown): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://backend');
    res.writeHead(200, { 'content-type': url.searchParams.get('type') ?? 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const timer = setTimeout(() => res.end('data: first\n\n'), Number(url.searchParams.get('after')));
    res.on('close', () => clearTimeout(timer));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('an event stream is seen open at once, its first event later', async (t) => {
  const s = await startTestSidecar(t, await flushingBackend(t), { upstream: { timeouts: { body: `${BODY_TIMEOUT_MS}ms` } } });
  for (const h2 of [false, true]) {
    const label = h2 ? 'h2' : 'HTTP/1.1';
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.destroy());
    const start = performance.now();
    const res = await request(`${s.url}/events?after=700`, { dispatcher: agent });
    const headAfter = Math.round(performance.now() - start);
    t.equal(res.statusCode, 200, `${label}: 200`);
    t.equal(res.headers['content-type'], 'text/event-stream', `${label}: text/event-stream`);
    t.ok(headAfter < 400, `${label}: the head after ${headAfter} ms, before the first event (700 ms)`);
    t.equal(await res.body.text(), 'data: first\n\n', `${label}: then the event`);
  }
});

t.test('a first event later than timeouts.body: 200 at once, then the stream is cut at timeouts.body', async (t) => {
  const s = await startTestSidecar(t, await flushingBackend(t), { upstream: { timeouts: { body: `${BODY_TIMEOUT_MS}ms` } } });
  for (const h2 of [false, true]) {
    const label = h2 ? 'h2' : 'HTTP/1.1';
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.destroy());
    const start = performance.now();
    const res = await request(`${s.url}/events?after=3000`, { dispatcher: agent });
    t.equal(res.statusCode, 200, `${label}: the backend's 200, not 504`);
    const outcome = await res.body.text().then(
      (text) => `completed: ${text}`,
      (err: Error) => `cut: ${err.message}`,
    );
    const took = Math.round(performance.now() - start);
    t.match(outcome, /^cut/, `${label}: a stream silent past timeouts.body is cut, not passed off as complete`);
    t.ok(took >= BODY_TIMEOUT_MS - 50 && took < BODY_TIMEOUT_MS + 1000, `${label}: cut after ${took} ms`);
  }
  t.ok(s.events.some((e) => e.name === 'warden.upstream.failed' && e['warden.rule'] === 'upstream.timeouts.body'));
});

t.test('other responses keep their head until the first bytes', async (t) => {
  // A plain response silent past timeouts.body still gets 504 (its head was never sent), as before.
  const s = await startTestSidecar(t, await flushingBackend(t), { upstream: { timeouts: { body: `${BODY_TIMEOUT_MS}ms` } } });
  for (const h2 of [false, true]) {
    const label = h2 ? 'h2' : 'HTTP/1.1';
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.destroy());
    const res = await request(`${s.url}/plain?after=3000&type=text/plain`, { dispatcher: agent });
    t.equal(res.statusCode, 504, `${label}: 504`);
    t.match(await res.body.text(), /"code":"ERR_UPSTREAM_TIMEOUT"/, `${label}: ERR_UPSTREAM_TIMEOUT`);
  }
});
