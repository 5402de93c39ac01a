/**
 * Request smuggling and malformed HTTP/1.1, written byte for byte on raw TLS sockets: every shape
 * is refused with a 400-class problem, the connection is closed, and the backend never sees it.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { rawTls, statusOf } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';
import { activeTimers, timersBackTo } from '../support/timers.js';

const CASES: [string, string, number][] = [
  ['CL then TE', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['TE then CL', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n', 400],
  ['duplicate CL, different', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400],
  ['duplicate CL, same', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab', 400],
  ['CL list', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\n\r\nab', 400],
  ['CL with sign', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +2\r\n\r\nab', 400],
  ['TE not chunked last', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n', 400],
  ['TE gzip, chunked', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 400],
  ['TE xchunked', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n', 400],
  ['space before colon', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n', 400],
  ['obs-fold', 'GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\r\n  folded\r\n\r\n', 400],
  ['control char in value', 'GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n', 400],
  ['space in header name', 'GET /x HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n', 400],
  ['line without colon', 'GET /x HTTP/1.1\r\nHost: a\r\nGarbage\r\n\r\n', 400],
  ['bad chunk size', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400],
  ['duplicate Host', 'GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
  ['missing Host', 'GET /x HTTP/1.1\r\n\r\n', 400],
  ['absolute-form target', 'GET http://evil.example/x HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['NUL in target', 'GET /x%00y HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['bad method token', 'G(ET /x HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['bad version', 'GET /x HTTP/9.9\r\nHost: a\r\n\r\n', 400],
];

t.test('smuggling and malformed requests are refused and never reach the backend', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  const rows: string[] = [];
  for (const [name, payload, status] of CASES) {
    const raw = await rawTls(s.port, payload, { ca: s.ca, timeoutMs: 3000 });
    const got = statusOf(raw);
    rows.push(`${name.padEnd(26)} ${got}`);
    t.equal(got, status, `${name}: ${status}`);
    t.match(raw, /content-type: application\/problem\+json/i, `${name}: problem+json`);
    t.match(raw, /"code":"ERR_(REQUEST_MALFORMED|REQUEST_AMBIGUOUS|PATH_INVALID)"/, `${name}: stable code`);
    t.match(raw, /\r\nconnection: close\r\n/i, `${name}: connection closed after the refusal`);
  }
  t.equal(backend.requests.length, 0, 'the backend saw none of them');
  t.ok(s.events.filter((e) => e.name === 'warden.http.smuggling').length >= 8, 'framing refusals raise warden.http.smuggling');
  t.ok(s.events.some((e) => e.name === 'warden.http.malformed'));
  t.comment(`\n${rows.join('\n')}`);

  // And the sidecar still serves well-formed requests afterwards.
  const ok = await rawTls(s.port, 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { ca: s.ca });
  t.equal(statusOf(ok), 200);
});

t.test('a smuggled second request inside a body is data, never a request', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  const inner = 'GET /admin HTTP/1.1\r\nHost: a\r\n\r\n';
  const payload = `POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: ${inner.length}\r\nConnection: close\r\n\r\n${inner}`;
  const raw = await rawTls(s.port, payload, { ca: s.ca });
  t.equal(statusOf(raw), 200);
  t.equal(backend.requests.length, 1);
  t.equal(backend.requests[0]?.url, '/echo');
  t.equal(backend.requests[0]?.bodyBytes, inner.length);
});

t.test('a request cut off mid-body by a parse error leaves nothing behind once refused', async (t) => {
  // Node detaches a request from its connection once its response is finished, so the connection
  // closing no longer ended a body still being read: it waited for request_timeout (here 1 h, 60 s
  // by default), holding the chunks that had arrived, outside max_connections and max_in_flight.
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { limits: { request_timeout: '1h' } });
  const warm = await rawTls(s.port, 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { ca: s.ca });
  t.equal(statusOf(warm), 200);
  const baseline = activeTimers();
  const chunk = 'a'.repeat(64 * 1024);
  const cut = `POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\nzz\r\n`;
  for (let i = 0; i < 3; i++) {
    const raw = await rawTls(s.port, cut, { ca: s.ca, timeoutMs: 3000 });
    t.equal(statusOf(raw), 400, `cut request ${i + 1}: 400`);
  }
  t.ok((await timersBackTo(baseline)) <= baseline, 'no body read is left waiting for request_timeout');
  t.equal(backend.requests.length, 1, 'only the well-formed request reached the backend');
});
