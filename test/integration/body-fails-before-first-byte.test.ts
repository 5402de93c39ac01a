/**
 * A backend response whose body fails before its first byte (a bad first chunk size, or a head
 * with Content-Length and then FIN): nothing of the response has reached the client, so it is
 * answered 502 problem+json, over HTTP/1.1 and h2, and logged 502. The head used to be handed to
 * the client's response as it arrived: HTTP/1.1 clients got an empty reply (node:http had not
 * written it yet), h2 clients HEADERS 200 then a reset, and the access line said 200, aborted.
 */
import t from 'tap';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { request } from 'undici';
import { fetchText, testAgent, type SimpleResponse } from '../support/clients.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';

const answers: Record<string, (s: Socket) => void> = {
  '/bad-first-chunk': (s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nHELLO\r\n0\r\n\r\n'),
  '/head-only': (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'),
  '/cut-after-bytes': (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n' + 'a'.repeat(40));
    setTimeout(() => s.end(), 50);
  },
  '/empty': (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'),
  '/no-content': (s) => s.write('HTTP/1.1 204 No Content\r\n\r\n'),
  '/stream': (s) => {
    // The head and a first chunk, then the rest only after the client has read the first.
    s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n');
    setTimeout(() => s.write('4\r\nlast\r\n0\r\n\r\n'), 300);
  },
};

async function rawBackend(t: Teardown): Promise<string> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const path = head.split(' ')[1] ?? '/';
      head = '';
      answers[path]?.(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('a body that fails before its first byte: 502 problem+json over HTTP/1.1 and h2, logged 502', async (t) => {
  const s = await startTestSidecar(t, await rawBackend(t));
  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    for (const path of ['/bad-first-chunk', '/head-only']) {
      const label = `${path}, ${h2 ? 'h2' : 'HTTP/1.1'}`;
      const res: Pick<SimpleResponse, 'status' | 'text' | 'headers'> = await fetchText(`${s.url}${path}`, agent).catch((err: Error) => ({
        status: 0,
        text: err.message,
        headers: {},
      }));
      t.equal(res.status, 502, `${label}: 502`);
      t.equal(res.headers['content-type'], 'application/problem+json', `${label}: problem+json`);
      t.match(res.text, /"code":"ERR_UPSTREAM_(PROTOCOL|UNAVAILABLE)"/, `${label}: the upstream failure's code`);
    }
  }
  await new Promise((r) => setTimeout(r, 400)); // access lines go out in batches (line-batcher.ts)
  const lines = s.logs.filter((l) => l.msg === 'request');
  t.same(
    lines.map((l) => `${String(l['url.path'])} ${String(l['http.response.status_code'])}${l['warden.aborted'] === true ? ' aborted' : ''}`),
    ['/bad-first-chunk 502', '/head-only 502', '/bad-first-chunk 502', '/head-only 502'],
    'each logged 502, not 200 aborted',
  );
});

t.test('the head still goes out with the first bytes: cut after them, empty bodies, a 204, a stream', async (t) => {
  const s = await startTestSidecar(t, await rawBackend(t));
  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    const label = (path: string) => `${path}, ${h2 ? 'h2' : 'HTTP/1.1'}`;
    // Bytes of the body went out: the status can no longer change, the response is cut.
    const cut = await fetchText(`${s.url}/cut-after-bytes`, agent).catch((err: Error) => err);
    t.ok(cut instanceof Error, `${label('/cut-after-bytes')}: cut, never complete`);
    const empty = await fetchText(`${s.url}/empty`, agent);
    t.same([empty.status, empty.text], [200, ''], `${label('/empty')}: 200, empty`);
    const none = await fetchText(`${s.url}/no-content`, agent);
    t.same([none.status, none.text], [204, ''], `${label('/no-content')}: 204`);
    // The first chunk reaches the client before the backend sends the rest.
    const started = performance.now();
    const res = await request(`${s.url}/stream`, { dispatcher: agent });
    t.equal(res.statusCode, 200, `${label('/stream')}: 200`);
    const first = (await res.body[Symbol.asyncIterator]().next()).value as Buffer;
    const firstAfter = performance.now() - started;
    t.equal(first.toString(), 'first', `${label('/stream')}: the first chunk`);
    t.ok(firstAfter < 250, `${label('/stream')}: head and first chunk before the rest is sent (${Math.round(firstAfter)} ms)`);
    res.body.destroy();
  }
});
