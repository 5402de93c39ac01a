import http2 from 'node:http2';
import { Readable } from 'node:stream';
import { startTestBackend } from '../support/backend.js';
import { startTestSidecar } from '../support/sidecar.js';
import { fetchText, testAgent } from '../support/clients.js';
const tt = { teardown() {} };
const backend = await startTestBackend();
const s = await startTestSidecar(tt, backend.url, { limits: { request_timeout: '2s', headers_timeout: '1s', max_body_bytes: '64KiB' } });
const which = process.env.W;
if (which === 'a') {
  const session = http2.connect(s.url, { ca: s.ca });
  const req = session.request({ ':method': 'POST', ':path': '/upload', 'content-length': '100' });
  req.write(Buffer.alloc(10));
  await new Promise<number>((resolve) => req.once('response', (h) => resolve(Number(h[':status']))));
  req.on('close', () => console.log('client stream closed', req.rstCode));
  req.on('error', (e) => console.log('client stream error', e));
  session.on('close', () => console.log('client session closed'));
  session.close();
} else {
  const agent = testAgent(s.ca, { h2: true });
  async function* stream() { for (let i = 0; i < 20; i++) yield Buffer.alloc(10_000, 1); }
  console.log((await fetchText(`${s.url}/upload`, agent, { method: 'POST', body: Buffer.alloc(100_000) })).status);
  console.log((await fetchText(`${s.url}/upload`, agent, { method: 'POST', body: Readable.from(stream()) })).status);
  await agent.close();
}
await new Promise((r) => setTimeout(r, 500));
const t0 = Date.now();
await s.sidecar.drain();
console.log('drain took', Date.now() - t0);
process.exit(0);
