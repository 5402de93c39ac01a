/**
 * An h2 request whose body had already ended (an empty DATA frame with END_STREAM, as curl sends
 * for `--data-binary @empty-file`) before the sidecar began to read it: an asynchronous stage
 * (here the Redis rate limiter) ran first, and Node had emitted the stream's 'end' with no one
 * listening yet. The read used to wait for an 'end' that had passed: 408 after request_timeout,
 * the backend never asked (red-team finding, docs/adversarial.md defect 91).
 */
import t from 'tap';
import http2 from 'node:http2';
import { startTestBackend } from '../support/backend.js';
import { startTestRedis } from '../support/redis.js';
import { startTestSidecar } from '../support/sidecar.js';

interface Answer {
  status: number;
  code?: string;
}

/** One h2 POST whose body is a single empty DATA frame with END_STREAM, sent with its HEADERS. */
function postEmptyData(url: string, ca: string, path: string, contentType: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, { ca, servername: 'localhost' });
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': contentType }, { endStream: false });
    req.end();
    let status = 0;
    let text = '';
    req.on('response', (headers) => (status = Number(headers[':status'])));
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      session.close();
      let code: string | undefined;
      try {
        code = (JSON.parse(text) as { code?: string }).code;
      } catch {
        code = undefined;
      }
      resolve({ status, code });
    });
    req.on('error', reject);
  });
}

t.test('h2: a body that ended before an async stage was done is read as empty, not waited for', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const redis = await startTestRedis(t);
  const s = await startTestSidecar(t, backend.url, {
    limits: { headers_timeout: '1s', request_timeout: '3s' },
    rate_limits: { store: 'redis', redis: redis.url, prefix: `ended-body-${process.pid}:`, default: { rate: 1000, per: '1s' } },
    routes: [{ id: 'orders', path: '/orders', methods: ['POST'] }],
  });
  // Three ways a body goes through the sidecar: read whole for a stage (the JSON body's `_method`
  // check), watched as it streams (a multipart body's), and streamed to the backend untouched.
  const cases: [string, string, Answer][] = [
    ['read whole', 'application/json', { status: 200 }],
    ['watched as it streams', 'multipart/form-data; boundary=b', { status: 400 }],
    ['streamed untouched', 'application/octet-stream', { status: 200 }],
  ];
  for (const [name, contentType, expected] of cases) {
    const before = backend.requests.length;
    const answer = await postEmptyData(s.url, s.ca, '/orders', contentType);
    t.not(answer.code, 'ERR_REQUEST_TIMEOUT', `${name}: not held until request_timeout`);
    t.equal(answer.status, expected.status, `${name}: answered ${expected.status}`);
    if (expected.status === 200) {
      t.equal(backend.requests.length, before + 1, `${name}: the backend had it`);
      t.equal(backend.requests.at(-1)?.bodyBytes, 0, `${name}: with an empty body`);
    }
  }
});
