/**
 * Closing an HTTP/1.1 connection with a request body still arriving (red team 28, F1): Warden
 * refused a request whose body was still coming (403, 404 unmatched, 413 by Content-Length) and
 * destroyed the connection as soon as the refusal was written. The unread body in the kernel's
 * receive queue made it answer the rest with RST, which erased the refusal before a client that
 * writes its whole body before reading (nginx, Apache, Caddy, HAProxy) read it: they answered 502,
 * and nginx marked the replica down. RFC 9112 §9.6: close in stages (lingering close). Also F4
 * (an HTTP/1.0 keep-alive request answered close-delimited: the POST pipelined behind it ran at the
 * backend) and F5 (max_requests_per_connection: node's bare 503 past the limit, connection left open).
 */
import t from 'tap';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { connect as http2Connect } from 'node:http2';
import { startTestBackend, type TestBackend } from '../support/backend.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';
import { exchange, sleep } from './harness.js';

const H = 'Host: localhost\r\n';
const MB5 = 5_000_000;
const BODY = Buffer.alloc(MB5, 0x61);

interface Upload {
  status: number;
  /** The client's writes all went through (nothing reset under them). */
  sent: boolean;
  closed: boolean;
  text: string;
}

/**
 * As nginx and Apache send a request: the whole body written before the answer is read (reading is
 * paused until the last byte is handed to the kernel), then read until the server closes.
 */
function uploadThenRead(s: TestSidecar, head: string, body: Buffer, timeoutMs = 4000): Promise<Upload> {
  return new Promise((resolve) => {
    // TLS over a TCP socket of its own, whose reading stops while the body goes out: what the server
    // sends meanwhile waits in the kernel's receive queue, where a reset erases it.
    const raw = netConnect(s.port, '127.0.0.1');
    const socket = tlsConnect({ socket: raw, servername: 'localhost', ca: s.ca, ALPNProtocols: ['http/1.1'] });
    let text = '';
    let sent = false;
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      raw.destroy();
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), sent, closed, text });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('error', () => undefined);
    raw.on('error', () => undefined);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.once('close', () => {
      closed = true;
      finish();
    });
    socket.once('secureConnect', () => {
      raw.pause();
      socket.write(head);
      socket.write(body, (err) => {
        sent = err == null;
        raw.resume();
      });
    });
  });
}

let backend: TestBackend;
let s: TestSidecar;
const requestsTo = (path: string) => backend.requests.filter((r) => r.url.startsWith(path)).length;

t.before(async () => {
  backend = await startTestBackend();
  s = await startTestSidecar(t, backend.url, {
    routing: { unmatched: 'refuse' },
    limits: { idle_timeout: '1s', max_body_bytes: '8MiB' },
    routes: [
      { id: 'admin', path: '/admin/*', access: { action: 'deny' } },
      { id: 'small', path: '/small', limits: { max_body_bytes: '1KiB' } },
      { id: 'pub', path: '/pub/*' },
      { id: 'unsized', path: '/response-headers' },
    ],
  });
});
t.teardown(() => backend.close());

t.test('a refused upload still arriving: every client that writes it whole before reading gets the refusal', async (t) => {
  const kinds: [string, string, number][] = [
    ['403 access deny', '/admin/x', 403],
    ['404 unmatched', '/no/such/route', 404],
    ['413 by Content-Length', '/small', 413],
  ];
  for (const [name, path, status] of kinds) {
    const got: number[] = [];
    let allSent = true;
    for (let i = 0; i < 6; i++) {
      const r = await uploadThenRead(
        s,
        `POST ${path} HTTP/1.1\r\n${H}Content-Type: application/octet-stream\r\nContent-Length: ${MB5}\r\n\r\n`,
        BODY,
      );
      got.push(r.status);
      allSent &&= r.sent && r.closed;
    }
    t.same(got, Array(6).fill(status), `${name}: ${status} six times of six (before: the connection reset, no answer)`);
    t.ok(allSent, `${name}: the body was taken whole, then the connection closed`);
  }
  t.equal(requestsTo('/admin') + requestsTo('/no/such') + requestsTo('/small'), 0, 'none reached the backend');
});

t.test('nothing read while lingering is parsed as a request, and the linger ends', async (t) => {
  // The refusal comes back while the body is still being sent; the rest of the body, then a request
  // pipelined behind it, are read and thrown away: never parsed, never forwarded.
  const behind = `POST /pub/behind-linger HTTP/1.1\r\n${H}Content-Length: 2\r\n\r\n{}`;
  const inBody = `GET /pub/inside-body HTTP/1.1\r\n${H}\r\n`;
  const r = await exchange(
    s.port,
    s.ca,
    [
      `POST /admin/x HTTP/1.1\r\n${H}Content-Length: 200000\r\n\r\n`,
      Buffer.alloc(100_000 - inBody.length, 0x61),
      inBody + 'x'.repeat(100_000) + behind,
    ],
    { gapMs: 100, timeoutMs: 3000 },
  );
  await sleep(100);
  t.equal(r.status, 403, 'the refusal');
  t.equal((r.text.match(/HTTP\/1\.1 \d{3} /g) ?? []).length, 1, 'one answer only');
  t.ok(r.closed, 'the connection closed once the client answered the FIN (its side ends with it)');
  t.equal(requestsTo('/pub/behind-linger') + requestsTo('/pub/inside-body'), 0, 'nothing sent during the linger reached the backend');
  t.same(
    s.logs.filter((l) => /behind-linger|inside-body/.test(String(l['url.path']))),
    [],
    'nor was started (no access line)',
  );

  // A client that keeps its side open and sends nothing more: closed after idle_timeout (1 s here, 5 s at most).
  const quiet = await exchange(s.port, s.ca, [`POST /admin/x HTTP/1.1\r\n${H}Content-Length: 100000\r\n\r\n`, 'a'.repeat(1000)], {
    timeoutMs: 4000,
  });
  t.equal(quiet.status, 403);
  t.ok(quiet.closed && quiet.ms < 2500, `a quiet lingering connection is closed within the linger timeout (${quiet.ms} ms)`);
});

t.test('the linger is bounded in bytes: a body past limits.max_body_bytes is cut', async (t) => {
  const big = Buffer.alloc(32 * 1024 * 1024, 0x61);
  const r = await uploadThenRead(s, `POST /admin/x HTTP/1.1\r\n${H}Content-Length: ${big.length}\r\n\r\n`, big, 4000);
  t.notOk(r.sent, 'the writes past 8 MiB are refused by a closed connection');
  t.ok(r.closed, 'and the connection is closed');
});

t.test('over h2 a refused upload is answered (its stream reset after the answer)', async (t) => {
  const statuses: number[] = [];
  for (const path of ['/admin/x', '/no/such/route', '/small']) {
    const session = http2Connect(s.url, { ca: s.ca, servername: 'localhost' });
    session.on('error', () => undefined);
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-length': String(MB5) });
    stream.on('error', () => undefined);
    stream.end(BODY);
    statuses.push(
      await new Promise<number>((resolve) => {
        stream.once('response', (h) => resolve(Number(h[':status'])));
        stream.once('close', () => resolve(0));
      }),
    );
    session.destroy();
  }
  t.same(statuses, [403, 404, 413]);
});

t.test('HTTP/1.0 keep-alive answered close-delimited: nothing pipelined behind it runs (F4)', async (t) => {
  const r = await exchange(
    s.port,
    s.ca,
    [
      `GET /response-headers HTTP/1.0\r\n${H}Connection: keep-alive\r\n\r\nPOST /pub/behind-http10 HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabc`,
    ],
    { timeoutMs: 3000 },
  );
  await sleep(100);
  t.match(r.text, /^HTTP\/1\.1 200 [^]*\r\nconnection: close\r\n/i, 'answered, close-delimited');
  t.equal((r.text.match(/HTTP\/1\.1 \d{3} /g) ?? []).length, 1, 'one answer');
  t.ok(r.closed, 'then closed');
  t.equal(requestsTo('/pub/behind-http10'), 0, 'the POST behind it never reached the backend (it ran, its answer dropped)');

  // Kept alive (a length): the one behind it is answered after it.
  const kept = await exchange(
    s.port,
    s.ca,
    [`GET /pub/first HTTP/1.0\r\n${H}Connection: keep-alive\r\n\r\nGET /pub/second-http10 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`],
    { timeoutMs: 3000 },
  );
  t.same(
    [...kept.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])),
    [200, 200],
    'an HTTP/1.0 answer with a length keeps the connection: the request behind it is answered',
  );
});

t.test('max_requests_per_connection: the Nth answer closes the connection; nothing after it starts (F5)', async (t) => {
  const limited = await startTestSidecar(t, backend.url, { limits: { max_requests_per_connection: 2, idle_timeout: '10s' } });
  const r = await exchange(
    limited.port,
    limited.ca,
    [`GET /pub/mrpc-1 HTTP/1.1\r\n${H}\r\nGET /pub/mrpc-2 HTTP/1.1\r\n${H}\r\nGET /pub/mrpc-3 HTTP/1.1\r\n${H}\r\n`],
    { timeoutMs: 4000 },
  );
  await sleep(100);
  const statuses = [...r.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  t.same(statuses, [200, 200], 'two answers, no bare 503 for the third');
  t.match(r.text, /"ok":true[^]*\r\nconnection: close\r\n[^]*"ok":true\}$/i, 'the second says Connection: close');
  t.ok(r.closed && r.ms < 2000, `and the connection closes after it (${r.ms} ms; before: at idle_timeout)`);
  t.equal(requestsTo('/pub/mrpc-3'), 0, 'the third never reached the backend');
  t.equal(requestsTo('/pub/mrpc-2'), 1);
});
