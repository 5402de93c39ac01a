/**
 * HTTP/2 abuse with hand-made frames against a real `warden proxy` process: rapid reset,
 * CONTINUATION flood, SETTINGS and PING floods, HPACK bomb, oversized frames, invalid stream ids,
 * DATA on closed and idle streams, flow-control overflow and malformed requests. Each row: GOAWAY,
 * a reset stream or a 4xx, within a bounded time, nothing at the backend, and the process still
 * serving (it did not exit; a normal request and admin /healthz answer).
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { FLAG, FRAME, frame, headerBlock, rawH2, requestHeaders, type Frame, type RawH2 } from '../support/h2-frames.js';
import { testConfigYaml } from '../support/sidecar.js';
import { check, Scoreboard, sleep, spawnWardenFromSource, type Target } from './harness.js';

const CONTINUATION = 0x9;
const PUSH_PROMISE = 0x5;

const goaway = (fs: Frame[]) => fs.find((f) => f.type === FRAME.GOAWAY);
const goawayCode = (f: Frame | undefined) => (f ? f.payload.readUInt32BE(4) : -1);
const rstOn = (fs: Frame[], id: number) => fs.find((f) => f.type === FRAME.RST_STREAM && f.streamId === id);
const headersOn = (fs: Frame[], id: number) => fs.find((f) => f.type === FRAME.HEADERS && f.streamId === id);
const statusOf = (f: Frame | undefined) => {
  // The server's first response header is ":status" from the HPACK static table (0x88 = 200, 0x8d = 404 …)
  // or a literal; good enough to tell 2xx from 4xx for our small responses.
  if (!f) return 0;
  const b = f.payload[0] as number;
  const indexed: Record<number, number> = { 0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500 };
  if (indexed[b]) return indexed[b];
  if ((b & 0xf0) === 0x00 || (b & 0xc0) === 0x40) {
    const text = f.payload.subarray(0, 8).toString('latin1');
    const m = /(\d{3})/.exec(text);
    return m ? Number(m[1]) : 0;
  }
  return 0;
};

/** The session ended: GOAWAY received or the connection closed. */
async function sessionEnded(h2: RawH2, timeoutMs: number): Promise<{ ended: boolean; code: number; ms: number }> {
  const started = Date.now();
  const closed = h2.socket.destroyed ? Promise.resolve(true) : h2.closed.then(() => true);
  const ended = await Promise.race([closed, h2.waitFor((fs) => goaway(fs) !== undefined, timeoutMs)]);
  return { ended: ended || h2.socket.destroyed, code: goawayCode(goaway(h2.frames)), ms: Date.now() - started };
}

function literalIndexed(name: string, value: string): Buffer {
  // "Literal with incremental indexing, new name" (RFC 7541 §6.2.1); lengths < 127 or 2-byte ints.
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  const int = (x: number) =>
    x < 127
      ? Buffer.from([x])
      : Buffer.from([127, ...(x - 127 < 128 ? [x - 127] : [((x - 127) % 128) + 128, Math.floor((x - 127) / 128)])]);
  return Buffer.concat([Buffer.from([0x40]), int(n.length), n, int(v.length), v]);
}

t.test('hostile HTTP/2', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const cert = await testCertificate();
  const yaml = await testConfigYaml(backend.url, {
    limits: { max_header_bytes: '8KiB', max_header_count: 50, max_concurrent_streams: 100, idle_timeout: '5s' },
    routes: [
      { id: 'secret', path: '/secret/*', access: { action: 'deny' } },
      { id: 'open', path: '/*' },
    ],
    log: { level: 'info', access: false },
  });
  const proc = await spawnWardenFromSource(t, yaml);
  const target: Target = { ...proc, ca: cert.certPem };
  const board = new Scoreboard(backend, () => target);
  const open = async () => {
    const h2 = await rawH2(target.port, target.ca);
    t.teardown(() => h2.socket.destroy());
    await h2.waitFor((fs) => fs.some((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0), 2000);
    return h2;
  };
  const denied = (id: number, end = true) =>
    frame(FRAME.HEADERS, FLAG.END_HEADERS | (end ? FLAG.END_STREAM : 0), id, headerBlock(requestHeaders('/secret/x')));
  const rst = (id: number, code = 0x8) => frame(FRAME.RST_STREAM, 0, id, Buffer.from([0, 0, 0, code]));
  const C = 'h2 abuse';

  await board.run(t, C, 'rapid reset: 2000 HEADERS+RST_STREAM', 'bounded: GOAWAY/close or all absorbed in < 5 s', async () => {
    const h2 = await open();
    const started = Date.now();
    for (let batch = 0; batch < 10 && !h2.socket.destroyed; batch++) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 200; i++) {
        const id = 1 + 2 * (batch * 200 + i);
        frames.push(denied(id), rst(id));
      }
      h2.send(...frames);
      await sleep(10);
    }
    const end = await sessionEnded(h2, 2000);
    check(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    t.comment(
      `rapid reset: ${end.ended ? `session ended (GOAWAY code ${end.code})` : 'absorbed, session open'} in ${Date.now() - started} ms`,
    );
  });

  await board.run(
    t,
    C,
    'rapid reset on a forwarded route: 500 HEADERS+RST_STREAM',
    'bounded; upstream requests aborted, none completed',
    async () => {
      const h2 = await open();
      const frames: Buffer[] = [];
      for (let i = 0; i < 500; i++) {
        const id = 1 + 2 * i;
        frames.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlock(requestHeaders('/hang'))), rst(id));
      }
      const started = Date.now();
      h2.send(...frames);
      await sessionEnded(h2, 1500);
      check(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    },
    { backendAllowance: 500 },
  );

  await board.run(t, C, 'CONTINUATION flood (no END_HEADERS)', 'GOAWAY / close within 3 s', async () => {
    const h2 = await open();
    h2.send(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, headerBlock(requestHeaders('/a'))));
    const piece = frame(CONTINUATION, 0, 1, headerBlock([['x-flood', 'y'.repeat(100)]]));
    for (let i = 0; i < 50 && !h2.socket.destroyed; i++) {
      h2.send(...Array.from({ length: 200 }, () => piece));
      await sleep(5);
    }
    const end = await sessionEnded(h2, 3000);
    check(end.ended, 'the session survived 10 000 CONTINUATION frames');
  });

  await board.run(t, C, 'CONTINUATION on a stream that has none open', 'GOAWAY PROTOCOL_ERROR', async () => {
    const h2 = await open();
    h2.send(frame(CONTINUATION, FLAG.END_HEADERS, 3, headerBlock(requestHeaders('/a'))));
    const end = await sessionEnded(h2, 2000);
    check(end.ended, 'no GOAWAY / close');
  });

  await board.run(t, C, 'SETTINGS flood: 5000 frames', 'ACKed or GOAWAY, bounded (< 5 s)', async () => {
    const h2 = await open();
    const started = Date.now();
    const one = frame(FRAME.SETTINGS, 0, 0, Buffer.from([0, 0x4, 0, 0, 0xff, 0xff])); // INITIAL_WINDOW_SIZE
    for (let i = 0; i < 10 && !h2.socket.destroyed; i++) h2.send(...Array.from({ length: 500 }, () => one));
    await h2.waitFor(
      (fs) => goaway(fs) !== undefined || fs.filter((f) => f.type === FRAME.SETTINGS && f.flags & FLAG.ACK).length > 5000,
      4000,
    );
    check(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  });

  await board.run(t, C, 'SETTINGS with an invalid value (ENABLE_PUSH=2)', 'GOAWAY / close', async () => {
    const h2 = await open();
    h2.send(frame(FRAME.SETTINGS, 0, 0, Buffer.from([0, 0x2, 0, 0, 0, 2])));
    const end = await sessionEnded(h2, 2000);
    check(end.ended, 'no GOAWAY / close');
  });

  await board.run(t, C, 'PING flood: 10 000 frames', 'ACKed or GOAWAY, bounded (< 5 s)', async () => {
    const h2 = await open();
    const started = Date.now();
    const ping = frame(FRAME.PING, 0, 0, Buffer.alloc(8, 7));
    for (let i = 0; i < 20 && !h2.socket.destroyed; i++) h2.send(...Array.from({ length: 500 }, () => ping));
    await h2.waitFor((fs) => goaway(fs) !== undefined || fs.filter((f) => f.type === FRAME.PING).length >= 10_000, 4000);
    check(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  });

  await board.run(t, C, 'PING flood without reading the ACKs', 'GOAWAY / close or absorbed; bounded', async () => {
    const h2 = await open();
    h2.socket.pause();
    const ping = frame(FRAME.PING, 0, 0, Buffer.alloc(8, 9));
    for (let i = 0; i < 40 && !h2.socket.destroyed; i++) h2.send(...Array.from({ length: 1000 }, () => ping));
    await sleep(1000);
    h2.socket.destroy();
  });

  await board.run(t, C, 'HPACK bomb: 4 KB entry referenced 4000 times', 'stream refused / GOAWAY; nothing forwarded', async () => {
    const h2 = await open();
    const block = Buffer.concat([
      headerBlock(requestHeaders('/a')),
      literalIndexed('x-bomb', 'z'.repeat(4000)),
      Buffer.alloc(4000, 0xbe), // indexed field 62: the entry just added, decoded 4 KB each time
    ]);
    h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, block));
    const ok = await h2.waitFor((fs) => goaway(fs) !== undefined || rstOn(fs, 1) !== undefined || statusOf(headersOn(fs, 1)) >= 400, 3000);
    check(ok || h2.socket.destroyed, 'no refusal');
  });

  await board.run(t, C, 'header list far over the limit (literals, 60 KB)', '431 / reset / GOAWAY', async () => {
    const h2 = await open();
    const many = Array.from({ length: 60 }, (_, i): [string, string] => [`x-h${i}`, 'v'.repeat(1000)]);
    const block = headerBlock([...requestHeaders('/a'), ...many]);
    h2.send(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, block.subarray(0, 16000)));
    for (let off = 16000; off < block.length; off += 16000) {
      const last = off + 16000 >= block.length;
      h2.send(frame(CONTINUATION, last ? FLAG.END_HEADERS : 0, 1, block.subarray(off, off + 16000)));
    }
    const ok = await h2.waitFor((fs) => goaway(fs) !== undefined || rstOn(fs, 1) !== undefined || statusOf(headersOn(fs, 1)) >= 400, 3000);
    check(ok || h2.socket.destroyed, 'no refusal');
  });

  await board.run(t, C, 'frame over SETTINGS_MAX_FRAME_SIZE (20 000 bytes)', 'GOAWAY FRAME_SIZE_ERROR / close', async () => {
    const h2 = await open();
    h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock(requestHeaders('/a', [], 'POST'))));
    h2.send(frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.alloc(20_000, 1)));
    const end = await sessionEnded(h2, 2000);
    check(end.ended, 'no GOAWAY / close');
  });

  await board.run(t, C, 'frame header claiming 16 MB', 'GOAWAY / close', async () => {
    const h2 = await open();
    const header = Buffer.from([0xff, 0xff, 0xff, FRAME.DATA, 0, 0, 0, 0, 1]);
    h2.send(header, Buffer.alloc(1000));
    const end = await sessionEnded(h2, 2000);
    check(end.ended, 'no GOAWAY / close');
  });

  for (const [name, id] of [
    ['HEADERS on stream 0', 0],
    ['HEADERS on an even (server) stream id', 2],
  ] as const) {
    await board.run(t, C, name, 'GOAWAY PROTOCOL_ERROR', async () => {
      const h2 = await open();
      h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlock(requestHeaders('/a'))));
      const end = await sessionEnded(h2, 2000);
      check(end.ended, 'no GOAWAY / close');
    });
  }

  await board.run(t, C, 'stream ids going backwards (5, then 3)', 'stream 3 ignored or GOAWAY; never served', async () => {
    const h2 = await open();
    h2.send(denied(5), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, headerBlock(requestHeaders('/a'))));
    await sessionEnded(h2, 1000);
    check(headersOn(h2.frames, 3) === undefined, 'stream 3 was answered');
  });

  await board.run(t, C, 'DATA on a closed stream', 'ignored, RST_STREAM or GOAWAY; nothing forwarded', async () => {
    const h2 = await open();
    h2.send(denied(1));
    await h2.waitFor((fs) => headersOn(fs, 1) !== undefined, 2000);
    await sleep(50);
    for (let i = 0; i < 100; i++) h2.send(frame(FRAME.DATA, 0, 1, Buffer.from('late data')));
    await h2.waitFor((fs) => goaway(fs) !== undefined || rstOn(fs, 1) !== undefined, 1000);
  });

  await board.run(t, C, 'DATA on an idle stream', 'GOAWAY PROTOCOL_ERROR', async () => {
    const h2 = await open();
    h2.send(frame(FRAME.DATA, 0, 7, Buffer.from('never opened')));
    const end = await sessionEnded(h2, 2000);
    check(end.ended, 'no GOAWAY / close');
  });

  await board.run(t, C, 'PUSH_PROMISE from the client', 'GOAWAY PROTOCOL_ERROR', async () => {
    const h2 = await open();
    h2.send(frame(PUSH_PROMISE, FLAG.END_HEADERS, 1, Buffer.concat([Buffer.from([0, 0, 0, 2]), headerBlock(requestHeaders('/a'))])));
    const end = await sessionEnded(h2, 2000);
    check(end.ended, 'no GOAWAY / close');
  });

  await board.run(t, C, 'WINDOW_UPDATE overflowing the window', 'GOAWAY / close', async () => {
    const h2 = await open();
    const inc = Buffer.alloc(4);
    inc.writeUInt32BE(0x7fffffff);
    h2.send(frame(FRAME.WINDOW_UPDATE, 0, 0, inc), frame(FRAME.WINDOW_UPDATE, 0, 0, inc));
    const end = await sessionEnded(h2, 2000);
    check(end.ended, 'no GOAWAY / close');
  });

  await board.run(t, C, 'WINDOW_UPDATE of 0', 'PROTOCOL_ERROR', async () => {
    const h2 = await open();
    h2.send(frame(FRAME.WINDOW_UPDATE, 0, 0, Buffer.alloc(4)));
    const end = await sessionEnded(h2, 2000);
    check(end.ended, 'no GOAWAY / close');
  });

  const MALFORMED: [string, [string, string][]][] = [
    ['upper-case header name', [...requestHeaders('/a'), ['X-Upper', 'v']]],
    ['connection-specific header', [...requestHeaders('/a'), ['connection', 'keep-alive']]],
    ['TE other than trailers', [...requestHeaders('/a'), ['te', 'gzip']]],
    ['pseudo-header after a regular one', [['x-a', 'b'], ...requestHeaders('/a')]],
    ['missing :path', requestHeaders('/a').filter(([n]) => n !== ':path')],
    ['duplicate :path', [...requestHeaders('/a'), [':path', '/secret/x']]],
    ['unknown pseudo-header', [...requestHeaders('/a'), [':evil', '1']]],
    [':path not absolute', requestHeaders('secret/x')],
    [':path with ../ above the root', requestHeaders('/../secret/x')],
    ['content-length disagreeing with DATA', [...requestHeaders('/a', [], 'POST'), ['content-length', '2']]],
  ];
  for (const [name, headers] of MALFORMED) {
    await board.run(t, 'h2 malformed requests', name, 'RST_STREAM / 4xx / GOAWAY; not forwarded', async () => {
      const h2 = await open();
      const withBody = name.startsWith('content-length');
      h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | (withBody ? 0 : FLAG.END_STREAM), 1, headerBlock(headers)));
      if (withBody) h2.send(frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.from('more than two bytes')));
      const ok = await h2.waitFor(
        (fs) => goaway(fs) !== undefined || rstOn(fs, 1) !== undefined || statusOf(headersOn(fs, 1)) >= 400,
        2000,
      );
      check(ok || h2.socket.destroyed, `answered ${statusOf(headersOn(h2.frames, 1)) || 'nothing'}`);
    });
  }

  // What a backend framework would read differently (docs/adversarial.md defects 9, 10, 15), over h2.
  const READINGS: [string, [string, string][], string][] = [
    ['upper case "/SECRET/x"', requestHeaders('/SECRET/x'), 'ERR_PATH_INVALID'],
    ['the subtree root "/secret"', requestHeaders('/secret'), 'ERR_PATH_INVALID'],
    ['";x" dropped, then the slash "/secret;x"', requestHeaders('/secret;x'), 'ERR_PATH_INVALID'],
    ['x-http-method-override: DELETE', [...requestHeaders('/a'), ['x-http-method-override', 'DELETE']], 'ERR_REQUEST_OVERRIDE'],
    ['?_method=DELETE', requestHeaders('/a?_method=DELETE'), 'ERR_REQUEST_OVERRIDE'],
    [':method get (lower case)', requestHeaders('/a', [], 'get'), 'ERR_REQUEST_MALFORMED'],
    [':method FOO (unregistered)', requestHeaders('/a', [], 'FOO'), 'ERR_REQUEST_MALFORMED'],
    ['host differing from :authority', [...requestHeaders('/a'), ['host', 'internal.example']], 'ERR_REQUEST_MALFORMED'],
    [
      'multipart boundary given twice',
      [...requestHeaders('/a'), ['content-type', 'multipart/form-data; boundary=a; boundary=b']],
      'ERR_REQUEST_AMBIGUOUS',
    ],
  ];
  for (const [name, headers, code] of READINGS) {
    await board.run(t, 'h2 readings', name, `400 ${code}; not forwarded`, async () => {
      const h2 = await open();
      h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(headers)));
      const ended = (fs: Frame[]) => fs.some((f) => f.streamId === 1 && (f.flags & FLAG.END_STREAM) !== 0 && f.type === FRAME.DATA);
      await h2.waitFor((fs) => ended(fs) || rstOn(fs, 1) !== undefined || goaway(fs) !== undefined, 2000);
      check(statusOf(headersOn(h2.frames, 1)) === 400, `answered ${statusOf(headersOn(h2.frames, 1)) || 'nothing'}`);
      const body = Buffer.concat(h2.frames.filter((f) => f.type === FRAME.DATA && f.streamId === 1).map((f) => f.payload)).toString();
      check(body.includes(`"code":"${code}"`), `body: ${body.slice(0, 120)}`);
    });
  }

  await board.run(
    t,
    'h2 readings',
    'host equal to :authority (in another case)',
    'forwarded, once, with :authority as Host',
    async () => {
      const h2 = await open();
      const before = backend.requests.length;
      h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock([...requestHeaders('/a'), ['host', 'LocalHost']])));
      const ended = (fs: Frame[]) => fs.some((f) => f.streamId === 1 && (f.flags & FLAG.END_STREAM) !== 0);
      await h2.waitFor((fs) => ended(fs) || rstOn(fs, 1) !== undefined || goaway(fs) !== undefined, 2000);
      check(statusOf(headersOn(h2.frames, 1)) === 200, `answered ${statusOf(headersOn(h2.frames, 1)) || 'nothing'}`);
      const seen = backend.requests.slice(before);
      check(seen.length === 1 && seen[0]?.headers.host === 'localhost', `backend saw ${JSON.stringify(seen.map((r) => r.headers.host))}`);
    },
    { backendAllowance: 1 },
  );

  await board.run(t, 'h2 malformed requests', 'CONNECT (authority-form)', '400 problem+json ERR_PATH_INVALID; not forwarded', async () => {
    const h2 = await open();
    const headers: [string, string][] = [
      [':method', 'CONNECT'],
      [':authority', 'evil.example:443'],
    ];
    h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(headers)));
    const ended = (fs: Frame[]) => fs.some((f) => f.streamId === 1 && (f.flags & FLAG.END_STREAM) !== 0 && f.type === FRAME.DATA);
    await h2.waitFor((fs) => ended(fs) || rstOn(fs, 1) !== undefined || goaway(fs) !== undefined, 2000);
    // Node answered an h2 CONNECT with a bare 405 until the listener took it (src/proxy/listener.ts).
    check(statusOf(headersOn(h2.frames, 1)) === 400, `answered ${statusOf(headersOn(h2.frames, 1)) || 'nothing'}`);
    const body = Buffer.concat(h2.frames.filter((f) => f.type === FRAME.DATA && f.streamId === 1).map((f) => f.payload)).toString();
    check(body.includes('"code":"ERR_PATH_INVALID"'), `body: ${body.slice(0, 120)}`);
  });

  await board.run(
    t,
    'h2 malformed requests',
    'CR LF in a header value',
    'refused, or the field dropped: never forwarded with CR/LF',
    async () => {
      const before = backend.requests.length;
      const h2 = await open();
      const headers: [string, string][] = [...requestHeaders('/a'), ['x-a', 'b\r\nx-injected: 1']];
      h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(headers)));
      await h2.waitFor((fs) => goaway(fs) !== undefined || rstOn(fs, 1) !== undefined || headersOn(fs, 1) !== undefined, 2000);
      const seen = backend.requests.slice(before).flatMap((r) => r.rawHeaders);
      check(!seen.some((h) => /x-injected|[\r\n]/i.test(h)), 'the backend saw the injected field');
    },
    { backendAllowance: 1 },
  );

  await board.run(t, 'h2 malformed requests', 'Expect other than 100-continue', '417; not forwarded', async () => {
    const h2 = await open();
    h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(requestHeaders('/a', [['expect', 'tea']]))));
    await h2.waitFor((fs) => headersOn(fs, 1) !== undefined || rstOn(fs, 1) !== undefined, 2000);
    check(statusOf(headersOn(h2.frames, 1)) === 417, `answered ${statusOf(headersOn(h2.frames, 1)) || 'nothing'}`);
  });

  /** Sends HEADERS and 400 bytes of an upload on stream 1, then cancels it; `during` runs before the cancel is judged. */
  const cancelledUpload = async (path: string, extra: [string, string][], during: (h2: RawH2) => Promise<void>) => {
    const h2 = await open();
    const [out, err] = [proc.stdout().length, proc.stderr().length];
    const seenBefore = backend.requests.length;
    const headers = requestHeaders(path, extra, 'POST');
    h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock(headers)), frame(FRAME.DATA, 0, 1, Buffer.alloc(400, 0x61)));
    await sleep(100);
    h2.send(rst(1));
    await during(h2);
    await sleep(200);
    const logged = `${proc.stdout().slice(out)}${proc.stderr().slice(err)}`;
    check(!logged.includes(path) && !logged.includes('unexpected error'), `logged: ${logged.slice(0, 300)}`);
    return backend.requests.slice(seenBefore).filter((r) => r.url === path);
  };

  // The body of a small upload is read whole before forwarding. A client that cancels its stream
  // half-way has left: the part that came is not a body to forward, and nothing failed on our side.
  await board.run(
    t,
    C,
    'upload cancelled mid-body (RST_STREAM CANCEL)',
    'not forwarded; no refusal or error logged',
    async () => {
      const declared: [string, string][] = [
        ['content-length', '1000'],
        ['content-type', 'application/json'],
      ];
      const got = await cancelledUpload('/cancelled-upload', declared, async (h2) => {
        // The session goes on: a second stream on it is served.
        h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, headerBlock(requestHeaders('/after-cancel'))));
        await h2.waitFor((fs) => headersOn(fs, 3) !== undefined, 2000);
        check(statusOf(headersOn(h2.frames, 3)) === 200, `the next stream got ${statusOf(headersOn(h2.frames, 3)) || 'nothing'}`);
      });
      check(got.length === 0, 'the backend saw the cancelled upload');
    },
    { backendAllowance: 1 },
  );

  // Without a length the body streams upstream (chunked) as it comes. Node ends a reset stream as
  // it destroys it: passed on, that end would close the chunked body as if it were whole.
  await board.run(
    t,
    C,
    'streamed upload cancelled mid-body (no content-length)',
    'the backend never gets it whole; no error logged',
    async () => {
      const got = await cancelledUpload('/cancelled-stream', [['content-type', 'application/octet-stream']], async () => {
        await sleep(100);
      });
      check(
        got.every((r) => r.sha256 === undefined),
        `the backend got a whole body of ${got[0]?.bodyBytes} bytes`,
      );
    },
    { backendAllowance: 1 },
  );

  // The same reset once the whole body has gone upstream, while the backend is still answering.
  await board.run(
    t,
    C,
    'streamed uploads sent whole, then reset while the backend answers',
    'the backend gets both bodies whole; the process stays up',
    async () => {
      const h2 = await open();
      const seenBefore = backend.requests.length;
      const upload = (id: number, extra: [string, string][]) =>
        frame(FRAME.HEADERS, FLAG.END_HEADERS, id, headerBlock(requestHeaders('/slow?ms=300', extra, 'POST')));
      h2.send(upload(1, []), frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.alloc(400, 0x61)));
      h2.send(upload(3, [['content-length', '20000']]), frame(FRAME.DATA, 0, 3, Buffer.alloc(10000, 0x61)));
      h2.send(frame(FRAME.DATA, FLAG.END_STREAM, 3, Buffer.alloc(10000, 0x61)));
      await sleep(100);
      h2.send(rst(1), rst(3));
      await sleep(400);
      const got = backend.requests.slice(seenBefore).map((r) => `${r.bodyBytes} ${r.sha256 ? 'whole' : 'cut'}`);
      check(got.length === 2 && got.includes('400 whole') && got.includes('20000 whole'), `the backend got ${got.join(', ')}`);
    },
    { backendAllowance: 2 },
  );

  check(!target.hasExited?.(), 'process alive');
  t.notOk(target.hasExited?.(), `the warden process is still running (stderr: ${proc.stderr().slice(0, 300)})`);
  board.report(t);
});
