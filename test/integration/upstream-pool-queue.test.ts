/**
 * Requests queued behind a busy upstream pool (every `upstream.connections` held by long
 * responses: server-sent events, slow downloads) get 504 ERR_UPSTREAM_TIMEOUT once
 * `upstream.timeouts.headers` has passed since they were dispatched, and are never sent to the
 * backend. Before, the headers timeout (Warden's and undici's) started only when a connection took
 * the request: with two 15 s event streams holding a pool of two, a bystander's GET waited 13.6 s
 * for its 200 under a 3 s headers timeout, and with longer streams for good (red team 26, F1).
 */
import t from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { request, type Dispatcher } from 'undici';
import { testAgent } from '../support/clients.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';

const CONNECTIONS = 2;

/** /hold answers a head and a first event, then nothing: it holds its connection. Anything else: "fast". */
async function holdingBackend(t: Teardown): Promise<{ url: string; seen: string[]; release(): void }> {
  const seen: string[] = [];
  const holding: ServerResponse[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      if (req.url !== '/hold') return void res.end('fast');
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('.');
      holding.push(res);
    });
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
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    release: () => {
      for (const res of holding.splice(0)) res.end();
    },
  };
}

for (const headers of ['1s', '10s'] as const) {
  // 1 s: the forwarder's exact timer (EXACT_TIMEOUTS_BELOW_MS); 10 s: undici's own beyond it.
  const timeoutMs = headers === '1s' ? 1000 : 10_000;
  t.test(`a request queued behind held connections gets 504 after timeouts.headers (${headers})`, async (t) => {
    const backend = await holdingBackend(t);
    const s = await startTestSidecar(t, backend.url, { upstream: { connections: CONNECTIONS, timeouts: { headers } } });
    const holder = testAgent(s.ca, { connections: CONNECTIONS });
    t.teardown(() => holder.destroy());
    const held: Dispatcher.ResponseData[] = await Promise.all(
      Array.from({ length: CONNECTIONS }, () => request(`${s.url}/hold`, { dispatcher: holder })),
    );
    t.ok(
      held.every((r) => r.statusCode === 200),
      `${CONNECTIONS} responses hold every connection of the pool`,
    );
    // A body of at most 16 KiB goes with the head in one write; a larger one is streamed (forward.ts).
    const cases: { label: string; h2: boolean; method: 'GET' | 'POST'; body?: string }[] =
      timeoutMs > 1000
        ? [{ label: 'GET over HTTP/1.1', h2: false, method: 'GET' }]
        : [
            { label: 'GET over HTTP/1.1', h2: false, method: 'GET' },
            { label: 'POST over HTTP/1.1', h2: false, method: 'POST', body: '{"order":1}' },
            { label: 'POST of a streamed 64 KiB body', h2: false, method: 'POST', body: `{"pad":"${'x'.repeat(64 * 1024)}"}` },
            { label: 'GET over h2', h2: true, method: 'GET' },
          ];
    for (const c of cases) {
      const agent = testAgent(s.ca, { h2: c.h2 });
      t.teardown(() => agent.destroy());
      const start = performance.now();
      // The client's own headers timeout only keeps the build before the fix from waiting for good.
      const r = await request(`${s.url}/fast`, {
        dispatcher: agent,
        method: c.method,
        headersTimeout: timeoutMs + 5000,
        ...(c.body !== undefined ? { body: c.body, headers: { 'content-type': 'application/json' } } : {}),
      })
        .then(async (res) => ({ status: res.statusCode, body: await res.body.text() }))
        .catch((err: Error) => ({ status: 0, body: err.message }));
      const took = Math.round(performance.now() - start);
      t.equal(r.status, 504, `${c.label} queued behind them: 504`);
      t.match(r.body, /"code":"ERR_UPSTREAM_TIMEOUT"/, `${c.label}: ERR_UPSTREAM_TIMEOUT`);
      t.ok(took >= timeoutMs - 50 && took < timeoutMs + 1500, `${c.label}: after ${took} ms (timeout ${timeoutMs} ms)`);
    }
    t.equal(
      s.events.filter((e) => e.name === 'warden.upstream.failed' && e['warden.rule'] === 'upstream.timeouts.headers').length,
      cases.length,
      'warden.upstream.failed, rule upstream.timeouts.headers, once each',
    );
    t.same(
      backend.seen.filter((u) => !u.endsWith('/hold')),
      [],
      'the backend never saw them',
    );
    // The held responses end: the queued requests answered 504 are then taken off the queue, and must not be sent.
    backend.release();
    for (const r of held) await r.body.text();
    const agent = testAgent(s.ca);
    t.teardown(() => agent.destroy());
    const r = await request(`${s.url}/fast?after`, { dispatcher: agent });
    const after = { status: r.statusCode, body: await r.body.text() };
    t.equal(after.status, 200, 'once connections free, requests go through');
    t.equal(after.body, 'fast');
    await new Promise((r) => setTimeout(r, 200));
    t.same(
      backend.seen.filter((u) => !u.endsWith('/hold')),
      ['GET /fast?after'],
      'and the requests answered 504 in the queue were never sent',
    );
  });
}
