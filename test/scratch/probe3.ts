import { startTestBackend } from '../support/backend.js';
import { startTestSidecar } from '../support/sidecar.js';
import { rawTls, statusOf } from '../support/clients.js';
import http2 from 'node:http2';
const tt = { teardown() {} };
const backend = await startTestBackend();
const s = await startTestSidecar(tt, backend.url, { limits: { request_timeout: '2s', headers_timeout: '1s' } });
const stats = () => (s.sidecar.current.forwarder as any).stats();
if (process.env.W === 'h1') {
  const raw = await rawTls(s.port, 'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789', { ca: s.ca, timeoutMs: 6000 });
  console.log(statusOf(raw), stats());
} else {
  const session = http2.connect(s.url, { ca: s.ca });
  const req = session.request({ ':method': 'POST', ':path': '/upload', 'content-length': '100' });
  req.write(Buffer.alloc(10));
  const status = await new Promise<number>((resolve) => req.once('response', (h) => resolve(Number(h[':status']))));
  session.close();
  console.log(status, stats());
}
await new Promise((r) => setTimeout(r, 1500));
console.log(stats(), backend.requests.map(r => [r.url, r.bodyBytes]));
process.exit(0);
