/**
 * Clients that leave while their coded body is being decoded (red-team round 21a): the lease was
 * released at the stream's close, and the decode, not stopped, went on taking its decoded bytes into
 * `max_buffered_bytes` for good — after a few, every buffered body past what was left got 503 until
 * a restart. A released lease now takes nothing, which also ends that decode.
 */
import t from 'tap';
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { startTestBackend } from '../support/backend.js';
import { startTestSidecar } from '../support/sidecar.js';

t.test('cancelled coded bodies give the body budget back whole', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { limits: { max_buffered_bytes: '40MiB', max_body_bytes: '10MiB' } });
  // ~9.5 MB of JSON that gzip takes to ~1.5 MB (a ratio under max_decoded_ratio's 100).
  const bits = randomBytes(9_500_000 / 8);
  const chars = Buffer.alloc(bits.length * 8);
  for (let i = 0; i < chars.length; i++) chars[i] = ((bits[i >> 3] as number) >> (i & 7)) & 1 ? 0x61 : 0x62;
  const coded = gzipSync(Buffer.concat([Buffer.from('{"a":"'), chars, Buffer.from('"}')]));
  let session: ClientHttp2Session = connect(s.url, { ca: s.ca });
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const post = (body: Buffer, coding?: string, cancel = false) =>
    new Promise<number | string>((resolve) => {
      if (session.closed || session.destroyed) {
        session = connect(s.url, { ca: s.ca });
        session.on('error', () => undefined);
      }
      const headers: Record<string, string> = { ':method': 'POST', ':path': '/echo', 'content-type': 'application/json' };
      if (coding !== undefined) headers['content-encoding'] = coding;
      const stream = session.request(headers);
      stream.on('response', (h) => {
        resolve(Number(h[':status']));
        stream.resume();
      });
      stream.on('error', () => resolve('error'));
      stream.on('close', () => resolve('closed'));
      stream.end(body, () => {
        if (cancel) stream.close(constants.NGHTTP2_CANCEL);
      });
    });
  const twoMegabytes = Buffer.from(JSON.stringify({ x: 'y'.repeat(2_000_000) }));
  t.equal(await post(twoMegabytes), 200, 'a 2 MB JSON body before');
  for (let i = 0; i < 8; i++) await post(coded, 'gzip', true);
  await new Promise((r) => setTimeout(r, 1500)); // the decodes of the cancelled ones end
  t.equal(await post(twoMegabytes), 200, 'after eight cancelled 9.5 MB decodes: a 2 MB JSON body still fits (it was 503 until a restart)');
});
