import { createSecureServer, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import t from 'tap';
import { ClientClosedError, readBodyThen } from '../../../src/proxy/body.js';
import { detachedBody, guardStream } from '../../../src/proxy/h2-exchange.js';
import { testCertificate } from '../../support/certs.js';
import { FLAG, FRAME, frame, headerBlock, rawH2, requestHeaders } from '../../support/h2-frames.js';

const body = () => new PassThrough();
/** readBodyThen's outcome as a promise: the body, or the error it was called with. */
const readBody = (source: Readable, maxBytes: number, timeoutMs: number) =>
  new Promise<Buffer>((resolve, reject) =>
    readBodyThen(source, maxBytes, timeoutMs, undefined, (err, read) => (err === undefined ? resolve(read as Buffer) : reject(err))),
  );
const CLOSED = { code: 'ERR_CLIENT_CLOSED' };

t.test('ClientClosedError: a signal without a stack trace, which leaves the limit as it was', async (t) => {
  const limit = Error.stackTraceLimit;
  const err = new ClientClosedError();
  t.equal(err.stack, 'Error: the client went away before the body ended', 'no frames to capture or format');
  t.equal(err.code, 'ERR_CLIENT_CLOSED');
  t.equal(Error.stackTraceLimit, limit);
  t.match(new Error('other').stack, /\n\s+at /, 'other errors keep theirs');
});

t.test('readBodyThen: a whole body resolves, a client that left rejects with ClientClosedError', async (t) => {
  const whole = body();
  const read = readBody(whole, 100, 1000);
  whole.end(Buffer.from('{"a":1}'));
  t.equal((await read).toString(), '{"a":1}');

  const closed = body();
  const gone = readBody(closed, 100, 1000);
  closed.write(Buffer.from('{"a":'));
  closed.destroy();
  await t.rejects(gone, CLOSED, 'closed without an end');

  for (const code of ['ECONNRESET', 'ERR_HTTP2_STREAM_ERROR']) {
    const errored = body();
    const failed = readBody(errored, 100, 1000);
    errored.destroy(Object.assign(new Error('reset'), { code }));
    await t.rejects(failed, CLOSED, `${code} is the client leaving`);
  }

  const broken = body();
  const other = readBody(broken, 100, 1000);
  broken.destroy(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
  await t.rejects(other, { code: 'ENOSPC' }, 'any other error is passed on as it is');
});

/**
 * Real h2 streams (node:http2 over TLS on loopback) guarded as the listener guards them, fed by a
 * client of raw frames: Node's own client sends END_STREAM before its RST_STREAM, and what is under
 * test is a reset in the middle of a body. Node ends a stream reset that way after 'aborted';
 * unguarded, that end passed a truncated body for a whole one.
 */
t.test('h2: a stream the client resets is a client that left, for every reader of its body', async (t) => {
  const cert = await testCertificate();
  const arrivals: ((s: ServerHttp2Stream) => void)[] = [];
  const server = createSecureServer({ cert: cert.certPem, key: cert.keyPem });
  server.on('stream', (stream) => {
    guardStream(stream);
    arrivals.shift()?.(stream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const h2 = await rawH2((server.address() as AddressInfo).port, cert.certPem);
  t.teardown(() => {
    h2.socket.destroy();
    server.close();
  });
  let id = -1;
  /** Sends HEADERS and 400 bytes without END_STREAM; resolves with the server's stream and its id. */
  const upload = (extra: [string, string][]) => {
    id += 2;
    const arrived = new Promise<ServerHttp2Stream>((r) => arrivals.push(r));
    h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, id, headerBlock(requestHeaders('/', extra, 'POST'))));
    h2.send(frame(FRAME.DATA, 0, id, Buffer.alloc(400, 0x61)));
    return { arrived, id };
  };
  const reset = (streamId: number) => h2.send(frame(FRAME.RST_STREAM, 0, streamId, Buffer.from([0, 0, 0, 8])));
  const readAll = (body: Readable) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      body.on('data', (c: Buffer) => chunks.push(c));
      body.once('end', () => resolve(Buffer.concat(chunks)));
      body.once('error', reject);
    });

  const declared = upload([['content-length', '1000']]);
  const cut = readBody(await declared.arrived, 2000, 5000);
  reset(declared.id);
  await t.rejects(cut, CLOSED, 'an end after the client reset the stream is not a whole body');

  const streamed = upload([]);
  const copy = readAll(detachedBody(await streamed.arrived));
  reset(streamed.id);
  await t.rejects(copy, CLOSED, 'the copy streamed upstream fails instead of ending');

  const whole = upload([]);
  const stream = await whole.arrived;
  const wholeCopy = readAll(detachedBody(stream));
  h2.send(frame(FRAME.DATA, FLAG.END_STREAM, whole.id, Buffer.alloc(100, 0x62)));
  t.equal((await wholeCopy).length, 500, 'a whole body is copied whole');
  reset(whole.id);
  await new Promise((r) => stream.once('close', r));
  t.pass('a reset after the body arrived whole leaves the copy as it was (no unheard error)');
});
