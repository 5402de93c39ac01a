/**
 * A backend that answers `Connection: close` and closes its socket after a large answer (gunicorn's
 * default sync worker, any HTTP/1.0-style server) must not take the sidecar down (red-team round
 * 27d, F1: one POST with a 100 KB answer killed the process). The forwarder pauses undici while the
 * client's socket is full (that pause bounds memory); when the backend's FIN came while undici's
 * h1 parser was paused at the end of what it had read, `Parser.finish()` asserted `!this.paused`
 * from the socket's 'end' handler: an uncaught AssertionError (nodejs/undici#5360, fixed upstream by
 * #5474 in undici 8, applied here to undici 7 by patches/undici+*.patch).
 *
 * A real `warden proxy` process from dist/ (the crash kills it), a `node:net` backend that answers
 * every request with `n` bytes (`?n=`), `Connection: close`, then ends its socket; clients that
 * leave the answer unread for a moment so the sidecar's writes back up.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import t from 'tap';
import { request } from 'undici';
import { testAgent } from '../support/clients.js';
import { testCertificate } from '../support/certs.js';
import { spawnWarden, testConfigYaml, type Teardown, type WardenProcess } from '../support/sidecar.js';

/** Requests per case at most, and time per case at most: before the fix the first one or two crashed it. */
const TRIES = 12;
const CASE_MS = 3000;
/** How long a client leaves the answer unread before reading it. */
const HOLD_MS = 60;
const UPLOAD = Buffer.alloc(20_000, 'u');

/** Reads one request (Content-Length or chunked body), answers `n` bytes with Connection: close, ends. */
function onBackendConnection(socket: Socket): void {
  socket.on('error', () => {});
  let buffered = Buffer.alloc(0);
  let answered = false;
  socket.on('data', (chunk: Buffer) => {
    if (answered) return;
    buffered = Buffer.concat([buffered, chunk]);
    const headEnd = buffered.indexOf('\r\n\r\n');
    if (headEnd < 0) return;
    const head = buffered.subarray(0, headEnd).toString('latin1');
    const body = buffered.subarray(headEnd + 4);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
    const chunked = /\r\ntransfer-encoding: *chunked/i.test(head);
    if (length !== undefined ? body.length < Number(length) : chunked && !body.subarray(-5).equals(Buffer.from('0\r\n\r\n'))) return;
    answered = true;
    const n = Number(/[?&]n=(\d+)/.exec(head.slice(0, head.indexOf('\r\n')))?.[1] ?? 100_000);
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n`);
    socket.write(Buffer.alloc(n, 'a'));
    socket.end();
  });
}

async function startClosingBackend(t: Teardown): Promise<string> {
  const server: Server = createServer(onBackendConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
}

/** One HTTP/1.1 request over raw TLS, the socket left unread for HOLD_MS: the body bytes received (-1 when short or failed). */
function h1Exchange(warden: WardenProcess, ca: string, method: string, n: number): Promise<number> {
  return new Promise((resolve) => {
    const body = method === 'POST' ? UPLOAD : Buffer.alloc(0);
    const head =
      `${method} /x?n=${n} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n` +
      (body.length > 0 ? `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n` : '') +
      '\r\n';
    const chunks: Buffer[] = [];
    const socket = tlsConnect({ port: warden.port, host: '127.0.0.1', servername: 'localhost', ca, ALPNProtocols: ['http/1.1'] }, () => {
      socket.write(Buffer.concat([Buffer.from(head), body]));
      socket.pause();
      setTimeout(() => socket.resume(), HOLD_MS);
    });
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const headEnd = all.indexOf('\r\n\r\n');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(all.subarray(0, 12).toString('latin1'))?.[1];
      const got = headEnd < 0 || status !== '200' ? -1 : all.length - headEnd - 4;
      resolve(got);
    });
  });
}

/** The same over h2 (undici), the body left unread for HOLD_MS. */
async function h2Exchange(warden: WardenProcess, ca: string, method: string, n: number): Promise<number> {
  const agent = testAgent(ca, { h2: true, connections: 1 });
  try {
    const res = await request(`${warden.url}/x?n=${n}`, {
      dispatcher: agent,
      method: method as 'GET' | 'POST',
      body: method === 'POST' ? UPLOAD : undefined,
      headers: method === 'POST' ? { 'content-type': 'application/octet-stream' } : {},
    });
    await new Promise((r) => setTimeout(r, HOLD_MS));
    const body = Buffer.from(await res.body.arrayBuffer());
    return res.statusCode === 200 ? body.length : -1;
  } catch {
    return -1;
  } finally {
    await agent.destroy();
  }
}

async function healthz(warden: WardenProcess): Promise<number> {
  try {
    const res = await request(`${warden.adminUrl}/healthz`, { headersTimeout: 2000, bodyTimeout: 2000 });
    await res.body.dump();
    return res.statusCode;
  } catch {
    return 0;
  }
}

const CASES: { name: string; protocol: 'h1' | 'h2'; method: string; n: number }[] = [
  { name: 'HTTP/1.1 POST, 100 KB answers', protocol: 'h1', method: 'POST', n: 100_000 },
  { name: 'HTTP/1.1 POST, 400 KB answers', protocol: 'h1', method: 'POST', n: 400_000 },
  { name: 'HTTP/1.1 GET, 400 KB answers', protocol: 'h1', method: 'GET', n: 400_000 },
  { name: 'h2 POST, 400 KB answers', protocol: 'h2', method: 'POST', n: 400_000 },
];

t.test('a backend closing after a large answer (Connection: close) leaves the sidecar alive', async (t) => {
  const backendUrl = await startClosingBackend(t);
  const config = await testConfigYaml(backendUrl);
  const { certPem: ca } = await testCertificate();
  for (const c of CASES) {
    await t.test(c.name, async (t) => {
      const warden = await spawnWarden(t, config);
      const received: number[] = [];
      const started = performance.now();
      while (received.length < TRIES && performance.now() - started < CASE_MS && warden.child.exitCode === null) {
        received.push(await (c.protocol === 'h1' ? h1Exchange : h2Exchange)(warden, ca, c.method, c.n));
      }
      // Let a crash of the last exchange land before looking.
      await new Promise((r) => setTimeout(r, 100));
      t.same(
        received.filter((got) => got !== c.n),
        [],
        `all ${received.length} answers complete (${c.n} bytes each): ${received.join(' ')}`,
      );
      t.equal(warden.child.exitCode, null, 'the process is alive');
      t.equal(await healthz(warden), 200, '/healthz answers 200');
      t.notMatch(warden.stderr(), /AssertionError|ERR_ASSERTION/, `no assertion on stderr: ${warden.stderr().slice(0, 300)}`);
    });
  }
});
