/**
 * H2Response over real h2 streams (node:http2 over TLS on loopback, undici as the client): a
 * response ends whole, and its last write reports back before the stream closes. Ended in the
 * same tick as that write, Node closed the stream first and built an ERR_STREAM_DESTROYED for the
 * late report on every response (a few percent of h2 throughput; see H2Response.end); such a
 * stream never emits 'finish', which is what this test reads.
 */
import { createSecureServer, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { guardStream, H2Response } from '../../../src/proxy/h2-exchange.js';
import { testCertificate } from '../../support/certs.js';
import { fetchText, testAgent } from '../../support/clients.js';

type Respond = (res: H2Response) => void;

const RESPONSES: Record<string, Respond> = {
  // As the forwarder answers: headers, the backend's chunk, then end() in the same tick.
  '/forwarded': (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write(Buffer.from('{"forwarded":true}'));
    res.end();
  },
  // As a refusal is answered: end(body) with no headers sent yet.
  '/refused': (res) => {
    res.statusCode = 403;
    res.end('{"refused":true}');
  },
  // No body: respond() ends the stream with the headers.
  '/empty': (res) => {
    res.statusCode = 204;
    res.end();
  },
};

t.test('h2: every response ends whole, its last write reported back before the stream closed', async (t) => {
  const cert = await testCertificate();
  const closes: { path: string; finished: boolean; rstCode: number; writableFinished: boolean }[] = [];
  const server = createSecureServer({ cert: cert.certPem, key: cert.keyPem });
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    guardStream(stream);
    const path = String(headers[':path']);
    const res = new H2Response(stream);
    let finished = false;
    stream.once('finish', () => (finished = true));
    stream.once('close', () => closes.push({ path, finished, rstCode: stream.rstCode, writableFinished: res.writableFinished }));
    stream.resume();
    RESPONSES[path]?.(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const agent = testAgent(cert.certPem, { h2: true });
  t.teardown(async () => {
    await agent.close();
    server.close();
  });
  const base = `https://localhost:${(server.address() as AddressInfo).port}`;

  for (let round = 0; round < 20; round++) {
    const forwarded = await fetchText(`${base}/forwarded`, agent);
    t.same([forwarded.status, forwarded.text], [200, '{"forwarded":true}']);
    const refused = await fetchText(`${base}/refused`, agent);
    t.same([refused.status, refused.text], [403, '{"refused":true}']);
    const empty = await fetchText(`${base}/empty`, agent);
    t.same([empty.status, empty.text], [204, '']);
  }
  for (let i = 0; i < 50 && closes.length < 60; i++) await new Promise((r) => setTimeout(r, 10));

  t.equal(closes.length, 60, 'every stream closed');
  t.ok(
    closes.every((c) => c.rstCode === 0 && c.writableFinished),
    'closed without a reset, and counted as answered whole',
  );
  const withBody = closes.filter((c) => c.path !== '/empty');
  t.same(
    withBody.filter((c) => !c.finished).map((c) => c.path),
    [],
    "every response with a body emitted 'finish' before 'close': its last write reported back first",
  );
});
