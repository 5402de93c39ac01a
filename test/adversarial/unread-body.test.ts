/**
 * CL.0 desync through a backend that leaves a body unread (docs/adversarial.md row 287): Python's
 * http.server (BaseHTTPRequestHandler, HTTP/1.1, keep-alive) never reads a body its handler does
 * not want, and parses it as the next request on the connection. Warden forwarded such bodies on
 * its shared backend connections, so a caller's body ran as a request of its own, past every stage,
 * and its answer could go to the next caller. Now a body an OpenAPI operation does not take is
 * refused, and any body a route's method or operation does not expect goes on a connection with
 * `Connection: close` that is not reused. A real Python backend records every request it parses.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { connect as http2Connect } from 'node:http2';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawTlsRequest } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';
import { sleep } from './harness.js';

const BACKEND = String.raw`
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def answer(self):
        # Like many handlers: the body is never read. A slow admin answer lets the pooled
        # connection go to the next request before it is written.
        print('SERVED', self.command, self.path, flush=True)
        body = ('{"path": "%s"}' % self.path).encode()
        self.send_response(200)
        self.send_header('content-type', 'application/json')
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_DELETE = do_OPTIONS = do_PURGE = do_UNLOCK = answer
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
print('PORT', server.server_address[1], flush=True)
server.serve_forever()
`;

interface PythonBackend {
  url: string;
  served: () => string[];
}

async function startPythonBackend(t: { teardown(fn: () => unknown): void }): Promise<PythonBackend> {
  const file = join(mkdtempSync(join(tmpdir(), 'warden-py-')), 'backend.py');
  writeFileSync(file, BACKEND);
  const child = spawn('python3', [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 100 && !/PORT \d+/.test(out); i++) await sleep(50);
  const port = /PORT (\d+)/.exec(out)?.[1];
  if (port === undefined) throw new Error(`the Python backend did not start: ${out}`);
  return {
    url: `http://127.0.0.1:${port}`,
    served: () => [...out.matchAll(/^SERVED (\S+ \S+)$/gm)].map((m) => m[1] as string),
  };
}

/** One raw HTTP/1.1 request to the sidecar: the whole answer as text. */
const rawExchange = (s: TestSidecar, request: string) => rawTlsRequest(s.port, s.ca, request);

const smuggled = (method: string, path: string) => `${method} ${path} HTTP/1.1\r\nHost: backend\r\n\r\n`;
const withBody = (head: string, body: string) => `${head}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

const ROUTES = [
  { id: 'public', path: '/public/*', methods: ['GET', 'POST', 'DELETE', 'OPTIONS'] },
  { id: 'admin', path: '/admin/*', methods: ['GET', 'DELETE'] },
  { id: 'any', path: '/any/*', methods: ['*'] },
];

t.test('a body on a method without body semantics is sent on a connection not reused: its bytes never run as a request', async (t) => {
  const backend = await startPythonBackend(t);
  const s = await startTestSidecar(t, backend.url, { routes: ROUTES });
  for (const method of ['GET', 'DELETE', 'OPTIONS']) {
    const answer = await rawExchange(
      s,
      withBody(`${method} /public/${method.toLowerCase()} HTTP/1.1\r\nhost: localhost`, smuggled('GET', `/admin/after-${method}`)),
    );
    t.match(answer, /^HTTP\/1\.1 200/, `${method} with a body: answered`);
    // The next request on a fresh pooled connection would otherwise find the smuggled bytes first.
    await rawExchange(s, `GET /public/next-${method} HTTP/1.1\r\nhost: localhost\r\n\r\n`);
  }
  await sleep(300);
  t.same(
    backend.served().filter((r) => r.includes('/admin')),
    [],
    'the backend never parsed a request out of a body',
  );
  t.ok(backend.served().includes('GET /public/next-GET'), 'and it served the requests that were sent');
});

t.test(
  'a route taking any method: a body on a method outside those with body semantics (PURGE, UNLOCK) is not left on a reused connection',
  async (t) => {
    const backend = await startPythonBackend(t);
    const s = await startTestSidecar(t, backend.url, { routes: ROUTES });
    for (const method of ['PURGE', 'UNLOCK']) {
      const answer = await rawExchange(
        s,
        withBody(`${method} /any/x HTTP/1.1\r\nhost: localhost`, smuggled('GET', `/admin/after-${method}`)),
      );
      t.match(answer, /^HTTP\/1\.1 200/, `${method} with a body: answered`);
      await rawExchange(s, `GET /any/next-${method} HTTP/1.1\r\nhost: localhost\r\n\r\n`);
    }
    await sleep(300);
    t.same(
      backend.served().filter((r) => r.includes('/admin')),
      [],
      'nothing smuggled ran',
    );
  },
);

t.test('over h2: a GET with content-length and DATA, then another GET: nothing smuggled runs', async (t) => {
  const backend = await startPythonBackend(t);
  const s = await startTestSidecar(t, backend.url, { routes: ROUTES });
  const session = http2Connect(s.url, { ca: s.ca });
  t.teardown(() => session.close());
  const send = (headers: Record<string, string>, body?: string) =>
    new Promise<number>((resolve) => {
      const stream = session.request(headers, { endStream: body === undefined });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', () => resolve(0));
      stream.resume();
      if (body !== undefined) stream.end(body);
    });
  const body = smuggled('DELETE', '/admin/users/7');
  t.equal(await send({ ':method': 'GET', ':path': '/public/x', 'content-length': String(body.length) }, body), 200);
  t.equal(await send({ ':method': 'GET', ':path': '/public/y' }), 200);
  // Without content-length: the body is known only as it arrives.
  t.equal(await send({ ':method': 'DELETE', ':path': '/public/z' }, body), 200);
  t.equal(await send({ ':method': 'GET', ':path': '/public/w' }), 200);
  await sleep(300);
  t.same(
    backend.served().filter((r) => r.includes('/admin')),
    [],
    'DELETE /admin/users/7 never ran',
  );
});

const STATUS_DOC = `openapi: 3.1.0
info: { title: t, version: "1" }
paths:
  /status:
    get:
      operationId: status
      security: []
      responses: { "200": { description: ok } }
  /ping:
    post:
      operationId: ping
      security: []
      responses: { "200": { description: ok } }
  /notes:
    post:
      operationId: addNote
      security: []
      requestBody:
        content:
          text/plain: { schema: { type: string } }
      responses: { "200": { description: ok } }
`;

t.test(
  'OpenAPI: a body sent to an operation without requestBody is refused (enforce) or sent on a closing connection (report)',
  async (t) => {
    const backend = await startPythonBackend(t);
    const enforce = await startTestSidecar(t, backend.url, {
      openapi: { document: openApiFile(STATUS_DOC), allow_public: true, validation: { mode: 'enforce' } },
    });
    for (const [method, path] of [
      ['GET', '/status'],
      ['POST', '/ping'],
    ] as const) {
      const answer = await rawExchange(
        enforce,
        withBody(`${method} ${path} HTTP/1.1\r\nhost: localhost`, smuggled('GET', '/admin/from-enforce')),
      );
      t.match(answer, /^HTTP\/1\.1 400 /, `${method} ${path} with a body: 400`);
      t.match(answer, /application\/problem\+json[\s\S]*"code":"ERR_REQUEST_INVALID"/, 'ERR_REQUEST_INVALID');
      t.match(answer, /is not taken by this operation/, 'saying why');
    }
    t.match(
      await rawExchange(enforce, `GET /status HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\n\r\n`),
      /^HTTP\/1\.1 200/,
      'content-length: 0 is no body',
    );
    t.match(
      await rawExchange(enforce, withBody('POST /notes HTTP/1.1\r\nhost: localhost\r\ncontent-type: text/plain', 'a note')),
      /^HTTP\/1\.1 200/,
      'an operation with a requestBody takes one',
    );

    const report = await startTestSidecar(t, backend.url, {
      openapi: { document: openApiFile(STATUS_DOC), allow_public: true, validation: { mode: 'report' } },
    });
    const answer = await rawExchange(report, withBody('POST /ping HTTP/1.1\r\nhost: localhost', smuggled('GET', '/admin/from-report')));
    t.match(answer, /^HTTP\/1\.1 200/, 'report mode: forwarded');
    await rawExchange(report, 'GET /status HTTP/1.1\r\nhost: localhost\r\n\r\n');
    await sleep(300);
    t.same(
      backend.served().filter((r) => r.includes('/admin')),
      [],
      'on a connection not reused: nothing smuggled ran',
    );
    t.ok(
      report.events.some((e) => e.name === 'warden.input.invalid' && /not taken by this operation/.test(String(e['warden.detail']))),
      'and reported',
    );
  },
);

t.test(
  'a POST route whose handler ignores bodies: upstream.keep_alive 0 keeps its bytes from running (the documented setting)',
  async (t) => {
    const backend = await startPythonBackend(t);
    const s = await startTestSidecar(t, backend.url, { routes: ROUTES, upstream: { keep_alive: 0 } });
    t.match(
      await rawExchange(s, withBody('POST /public/ping HTTP/1.1\r\nhost: localhost', smuggled('GET', '/admin/from-post'))),
      /^HTTP\/1\.1 200/,
    );
    await rawExchange(s, 'GET /public/after HTTP/1.1\r\nhost: localhost\r\n\r\n');
    await sleep(300);
    t.same(
      backend.served().filter((r) => r.includes('/admin')),
      [],
      'nothing smuggled ran',
    );
  },
);
