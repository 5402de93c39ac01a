/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1): a client that waits for 100 before sending its body
 * (curl does for large uploads) gets it only once the request has passed every check its head allows. A
 * request refused on its headers (401, 413 by Content-Length) is answered at once, without 100, so
 * its body is never sent. Over HTTP/1.1 (a raw socket, and curl) and h2 (node:http2's client).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { startTestBackend } from '../support/backend.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';

const run = promisify(execFile);
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
const now = () => Math.floor(Date.now() / 1000);

/**
 * An HTTP/1.1 request that sends its head, then its body only once 100 Continue came back: what a
 * waiting client sees and whether it ever sent the body.
 */
function headThenBody(s: TestSidecar, head: string, body: Buffer): Promise<{ text: string; bodySent: boolean }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ port: s.port, host: '127.0.0.1', servername: 'localhost', ca: s.ca, ALPNProtocols: ['http/1.1'] });
    let text = '';
    let bodySent = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, bodySent });
    };
    // Bounded: a request left waiting for its body is answered 408 long after this.
    const timer = setTimeout(finish, 5000);
    socket.once('secureConnect', () => socket.write(head));
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (!bodySent && text.startsWith(CONTINUE)) {
        bodySent = true;
        socket.write(body);
      }
      // Done once the final response's body is in (its Content-Length).
      const final = text.startsWith(CONTINUE) ? text.slice(CONTINUE.length) : text;
      const headEnd = final.indexOf('\r\n\r\n');
      const length = headEnd < 0 ? undefined : /content-length: (\d+)/i.exec(final.slice(0, headEnd))?.[1];
      if (length !== undefined && final.length - headEnd - 4 >= Number(length)) finish();
    });
    socket.once('close', finish);
    socket.once('error', finish);
  });
}

t.test('Expect: 100-continue is answered only after the checks on the head', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const s = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['pets'] }] },
    limits: { max_body_bytes: '4MiB' },
  });
  const good = await idp.sign({ iss: idp.issuer, aud: 'pets', sub: 'alice', exp: now() + 300 });
  const body = Buffer.from('{"name":"rex"}');
  const head = (auth: string, length = body.length) =>
    `POST /pets HTTP/1.1\r\nHost: localhost\r\n${auth}Content-Type: application/json\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`;

  t.test('HTTP/1.1', async (t) => {
    const before = backend.requests.length;
    const ok = await headThenBody(s, head(`Authorization: Bearer ${good}\r\n`), body);
    t.match(ok.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /, 'an accepted request: 100, then the response');
    t.ok(ok.bodySent, 'the body was sent after 100');
    t.equal(backend.requests.length, before + 1);
    t.equal(backend.requests.at(-1)?.bodyBytes, body.length, 'the backend got the body');
    t.equal(backend.requests.at(-1)?.headers.expect, undefined, 'the expectation is the sidecar’s, never forwarded');

    const cases: [string, string, number, string][] = [
      ['no token', head(''), 401, 'ERR_AUTHN_TOKEN_MISSING'],
      ['a bad token', head('Authorization: Bearer not.a.token\r\n'), 401, 'ERR_AUTHN_TOKEN_(MALFORMED|INVALID)'],
      ['Content-Length over max_body_bytes', head(`Authorization: Bearer ${good}\r\n`, 8 * 1024 * 1024), 413, 'ERR_BODY_TOO_LARGE'],
    ];
    for (const [name, request, status, code] of cases) {
      const r = await headThenBody(s, request, body);
      t.match(r.text, new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: ${status} at once, no 100 before it`);
      t.match(r.text, new RegExp(`"code":"${code}"`), `${name}: ${code}`);
      t.notOk(r.bodySent, `${name}: the body was never sent`);
    }
    t.equal(backend.requests.length, before + 1, 'the backend saw only the accepted request');
  });

  t.test('curl, which waits for 100 before a large upload', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-expect-'));
    writeFileSync(join(dir, 'ca.pem'), s.ca);
    writeFileSync(join(dir, 'upload.bin'), Buffer.alloc(1024 * 1024 + 512, 0x61));
    const curl = async (auth: string[]) => {
      const args = ['-s', '-o', '/dev/null', '--cacert', join(dir, 'ca.pem'), '--http1.1', '--data-binary', `@${join(dir, 'upload.bin')}`];
      const { stdout } = await run('curl', [...args, ...auth, '-w', '%{http_code} %{size_upload}', `${s.url}/pets`]);
      return stdout.split(' ').map(Number) as [number, number];
    };
    const [status, uploaded] = await curl(['-H', 'Authorization: Bearer not.a.token']);
    t.equal(status, 401, 'refused on its token');
    t.equal(uploaded, 0, 'curl sent none of its 1 MiB body');
  });

  t.test('h2', async (t) => {
    const session = http2.connect(s.url, { ca: s.ca });
    t.teardown(() => session.close());
    const exchange = (auth: Record<string, string>, expect = '100-continue') =>
      new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
        const req = session.request({
          ':method': 'POST',
          ':path': '/pets',
          'content-type': 'application/json',
          'content-length': String(body.length),
          expect,
          ...auth,
        });
        let continued = false;
        req.on('continue', () => {
          continued = true;
          req.end(body);
        });
        req.on('response', (h) => {
          req.resume();
          req.on('end', () => resolve({ status: Number(h[':status']), continued }));
        });
        req.on('error', reject);
      });
    const before = backend.requests.length;
    t.same(await exchange({ authorization: `Bearer ${good}` }), { status: 200, continued: true }, 'accepted: 100, then 200');
    t.same(await exchange({}), { status: 401, continued: false }, 'no token: 401 without 100');
    // Case-insensitive, as node:http reads it over HTTP/1.1 (RFC 9110 §10.1.1): it got 417 over h2.
    t.same(
      await exchange({ authorization: `Bearer ${good}` }, '100-Continue'),
      { status: 200, continued: true },
      '"100-Continue": the same',
    );
    t.equal(backend.requests.length, before + 2);
  });
});

/** An HTTP/1.1 request written whole on a raw TLS socket: the answer, read until the server closes or 3 s. */
function rawH1(s: TestSidecar, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ port: s.port, host: '127.0.0.1', servername: 'localhost', ca: s.ca, ALPNProtocols: ['http/1.1'] });
    let answer = '';
    const timer = setTimeout(() => socket.destroy(), 3000);
    socket.once('secureConnect', () => socket.write(text));
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.once('error', () => undefined);
  });
}

// Node answered these itself over HTTP/1.1 and the h2 listener wrote a bare 417: no problem
// document, no event, no access line, no span (a probe with a SQL injection in its query was nowhere).
t.test('an Expect other than 100-continue: 417 through the rescue, over HTTP/1.1 and h2', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const receiver = await startOtlpReceiver();
  t.teardown(() => receiver.close());
  const s = await startTestSidecar(t, backend.url, { telemetry: { otlp: { endpoint: receiver.url, export_interval: '100ms' } } });
  const refusedEvents = () => s.events.filter((e) => e.name === 'warden.http.malformed' && e['warden.rule'] === 'http.expect');
  const accessLines = (path: string) => s.logs.filter((l) => l.msg === 'request' && l['url.path'] === path);

  t.test('HTTP/1.1', async (t) => {
    const answer = await rawH1(s, 'GET /probe/h1?q=1 HTTP/1.1\r\nHost: localhost\r\nExpect: nonsense\r\nConnection: close\r\n\r\n');
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    t.match(head, /^HTTP\/1\.1 417 /);
    t.match(head, /content-type: application\/problem\+json/i);
    t.match(JSON.parse(body || '{}'), { status: 417, code: 'ERR_EXPECTATION_FAILED' }, 'a problem document');
    t.match(refusedEvents().at(-1), { 'warden.code': 'ERR_EXPECTATION_FAILED', 'url.path': '/probe/h1', 'http.response.status_code': 417 });
    t.equal(accessLines('/probe/h1').length, 1, 'an access line');
    const span = await receiver.until(() => receiver.spans.find((x) => x.kind === 2 && x.attributes['url.path'] === '/probe/h1'));
    t.match(span.attributes, {
      'http.response.status_code': 417,
      'warden.event': 'warden.http.malformed',
      'warden.code': 'ERR_EXPECTATION_FAILED',
    });
  });

  t.test('h2', async (t) => {
    const client = http2.connect(s.url, { ca: s.ca });
    t.teardown(() => client.close());
    const { status, type, body } = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
      const req = client.request({ ':path': '/probe/h2?q=1', expect: 'x' });
      let text = '';
      req.setEncoding('utf8');
      req.on('response', (h) =>
        req.on('end', () => resolve({ status: Number(h[':status']), type: String(h['content-type']), body: text })),
      );
      req.on('data', (d: string) => (text += d));
      req.on('error', reject);
      req.end();
    });
    t.equal(status, 417);
    t.equal(type, 'application/problem+json');
    t.match(JSON.parse(body || '{}'), { status: 417, code: 'ERR_EXPECTATION_FAILED' }, 'a problem document');
    t.match(refusedEvents().at(-1), { 'warden.code': 'ERR_EXPECTATION_FAILED', 'url.path': '/probe/h2' });
    t.equal(accessLines('/probe/h2').length, 1, 'an access line');
    const span = await receiver.until(() => receiver.spans.find((x) => x.kind === 2 && x.attributes['url.path'] === '/probe/h2'));
    t.match(span.attributes, { 'http.response.status_code': 417, 'warden.code': 'ERR_EXPECTATION_FAILED' });
  });

  t.equal(backend.requests.length, 0, 'none forwarded');
});
