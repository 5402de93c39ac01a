/**
 * A backend that closes an idle keep-alive connection just as Warden reuses it (gunicorn's gthread
 * worker closes idle connections after 2 s; upstream.keep_alive is 4 s): undici fails the request
 * with "other side closed" (or ECONNRESET) before any response byte, and Warden answered 502. An
 * idempotent request whose body is absent or held whole is now sent again, once, on a fresh
 * connection; a POST, or a body streamed through, is not (the backend may have acted on it).
 *
 * The race is made deterministic: the backend answers the first request of a connection, then
 * closes (FIN, or RST for /stale-rst/) when the next request's bytes arrive, without answering.
 */
import t from 'tap';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { fetchText, testAgent, type SimpleResponse } from '../support/clients.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';

interface Seen {
  conn: number;
  /** Requests this connection had answered before this one. */
  served: number;
  method: string;
  path: string;
}

async function closingBackend(t: Teardown): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  let conns = 0;
  const server = createServer((socket: Socket) => {
    const conn = ++conns;
    let served = 0;
    let buf = Buffer.alloc(0);
    let bodyLeft = 0;
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (bodyLeft > 0) {
          const take = Math.min(bodyLeft, buf.length);
          bodyLeft -= take;
          buf = buf.subarray(take);
          if (bodyLeft > 0) return;
        }
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
        const [method = '', path = ''] = head.split(' ');
        seen.push({ conn, served, method, path });
        // /down/: the backend takes every request and closes without a word; the others only on a reused connection.
        if (path.startsWith('/down/') || (served > 0 && path.startsWith('/stale/'))) {
          socket.destroy();
          return;
        }
        // /hang/: closed when reused, never answered on a fresh connection.
        if (path.startsWith('/hang/')) {
          if (served > 0) socket.destroy();
          return;
        }
        // /slow-close/: taken, worked on for 1.3 s, then the connection closes unanswered (a backend that died on it).
        if (served > 0 && path.startsWith('/slow-close/')) {
          setTimeout(() => socket.destroy(), 1300);
          return;
        }
        if (served > 0 && path.startsWith('/stale-rst/')) {
          socket.resetAndDestroy();
          return;
        }
        bodyLeft = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        served++;
        const body = `conn=${conn}`;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

t.test('a request on an idle connection the backend closes: idempotent ones retried once on a fresh connection', async (t) => {
  const backend = await closingBackend(t);
  // One pooled connection: each request after the first reuses it.
  const s = await startTestSidecar(t, backend.url, { upstream: { connections: 1 } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const send = (path: string, options: Parameters<typeof fetchText>[2] = {}): Promise<Pick<SimpleResponse, 'status' | 'text'>> =>
    fetchText(`${s.url}${path}`, agent, options).catch((err: Error) => ({ status: 0, text: err.message }));
  const seenOf = (path: string) => backend.seen.filter((r) => r.path === path).map((r) => `${r.method} served=${r.served}`);

  const cases: { path: string; options?: Parameters<typeof fetchText>[2]; retried: boolean; label: string }[] = [
    { path: '/stale/get', retried: true, label: 'GET, FIN' },
    { path: '/stale-rst/get', retried: true, label: 'GET, RST' },
    { path: '/stale/head', options: { method: 'HEAD' }, retried: true, label: 'HEAD' },
    {
      path: '/stale/put',
      options: { method: 'PUT', body: 'small', headers: { 'content-type': 'text/plain' } },
      retried: false,
      label: 'PUT, body held whole: not safe (a backend that took it and died would run it twice)',
    },
    { path: '/stale/delete', options: { method: 'DELETE' }, retried: false, label: 'DELETE: not safe' },
    {
      path: '/stale/post-small',
      options: { method: 'POST', body: 'small', headers: { 'content-type': 'text/plain' } },
      retried: false,
      label: 'POST',
    },
    {
      path: '/stale/post-streamed',
      options: { method: 'POST', body: 'x'.repeat(256 * 1024), headers: { 'content-type': 'application/octet-stream' } },
      retried: false,
      label: 'POST, streamed body',
    },
    {
      path: '/stale-rst/put-streamed',
      options: { method: 'PUT', body: 'x'.repeat(256 * 1024), headers: { 'content-type': 'application/octet-stream' } },
      retried: false,
      label: 'PUT, streamed body',
    },
  ];
  for (const c of cases) {
    t.equal((await send('/warm')).status, 200, `${c.label}: the connection is opened and idle`);
    const res = await send(c.path, c.options);
    if (c.retried) {
      t.equal(res.status, 200, `${c.label}: answered 200 by the retry`);
      t.same(
        seenOf(c.path),
        [`${c.options?.method ?? 'GET'} served=1`, `${c.options?.method ?? 'GET'} served=0`],
        `${c.label}: sent twice, the second time on a fresh connection`,
      );
    } else {
      t.equal(res.status, 502, `${c.label}: 502, not retried`);
      t.same(seenOf(c.path), [`${c.options?.method ?? 'GET'} served=1`], `${c.label}: the backend saw it once`);
    }
  }

  // The backend closes every connection it is sent this on: one retry, no more.
  t.equal((await send('/warm')).status, 200, 'warmed again');
  t.equal((await send('/down/reused')).status, 502, 'a backend that closes the retry too: 502');
  t.same(seenOf('/down/reused'), ['GET served=1', 'GET served=0'], 'retried at most once');
  // A fresh connection closed before any answer is no stale one: not retried.
  t.equal((await send('/down/fresh')).status, 502, 'closed on a fresh connection: 502');
  t.same(seenOf('/down/fresh'), ['GET served=0'], 'a request that fails on a fresh connection is not retried');
  // A close long after the request was written is no idle close racing it: the backend was working on it (review rt29-3).
  t.equal((await send('/warm')).status, 200, 'warmed again');
  t.equal((await send('/slow-close/get')).status, 502, 'closed 1.3 s after the write: 502');
  t.same(seenOf('/slow-close/get'), ['GET served=1'], 'not sent again');
  // The pool still works afterwards.
  t.equal((await send('/warm')).status, 200, 'the pool serves on');
});

t.test('the retry is timed with the first attempt: timeouts.headers bounds both', async (t) => {
  const backend = await closingBackend(t);
  const s = await startTestSidecar(t, backend.url, { upstream: { connections: 1, timeouts: { headers: '1s' } } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  t.equal((await fetchText(`${s.url}/warm`, agent)).status, 200, 'the connection is opened and idle');
  const started = performance.now();
  const res = await fetchText(`${s.url}/hang/x`, agent);
  const ms = performance.now() - started;
  t.equal(res.status, 504, 'no answer to the retry: 504');
  t.ok(ms >= 900 && ms < 1600, `within timeouts.headers of the first dispatch (${Math.round(ms)} ms)`);
  t.same(
    backend.seen.filter((r) => r.path === '/hang/x').map((r) => r.served),
    [1, 0],
    'sent on the reused connection, then once on a fresh one',
  );
});
