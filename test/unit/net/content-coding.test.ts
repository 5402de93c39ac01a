/**
 * How far a coded body is decoded, and which coded bodies are refused before any stage reads them
 * (src/net/content-coding.ts; adversarial.md, defects 130–132).
 */
import t from 'tap';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { decodeContentCodings } from '../../../src/net/content-coding.js';
import { WardenError } from '../../../src/errors.js';
import { deflatePolyglot } from '../../support/deflate-polyglot.js';

const MiB = 1024 * 1024;
/** Decoded bytes never refused for their ratio (content-coding.ts RATIO_FREE_BYTES). */
const RATIO_FREE_BYTES = 64 * 1024;
const refusal = (p: Promise<Buffer>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as WardenError,
  );

t.test('max_decoded_ratio: decoded past 64 KiB, at most N times the bytes sent', async (t) => {
  const json = Buffer.from('[' + '{},'.repeat(3 * MiB - 2) + '{}]');
  const br = brotliCompressSync(json);
  t.ok(br.length < 64, `${json.length} bytes of JSON in ${br.length} bytes of br`);
  t.match(await refusal(decodeContentCodings(br, ['br'], 10 * MiB, undefined, 100)), {
    code: 'ERR_BODY_TOO_LARGE',
    rule: 'limits.max_decoded_ratio',
    detail: /at most 100 times the \d+ bytes sent/,
  });
  // Stacked codings: each step against the bytes sent, so the ratios do not multiply.
  const stacked = brotliCompressSync(gzipSync(json));
  t.match(await refusal(decodeContentCodings(stacked, ['gzip', 'br'], 10 * MiB, undefined, 100)), {
    rule: 'limits.max_decoded_ratio',
  });
  // Where max_body_bytes is the tighter bound, it is the one named.
  t.match(await refusal(decodeContentCodings(br, ['br'], MiB, undefined, 1_000_000)), { rule: 'limits.max_body_bytes' });
  // Up to 64 KiB decoded, any ratio: small repetitive bodies compress far.
  const small = Buffer.alloc(RATIO_FREE_BYTES, 0x20);
  t.same(await decodeContentCodings(gzipSync(small), ['gzip'], 10 * MiB, undefined, 2), small);
  t.match(await refusal(decodeContentCodings(gzipSync(Buffer.concat([small, Buffer.from(' ')])), ['gzip'], 10 * MiB, undefined, 2)), {
    rule: 'limits.max_decoded_ratio',
  });
  // Ordinary JSON at a ratio of a few times passes.
  const records = Buffer.from(
    JSON.stringify(Array.from({ length: 3000 }, (_, i) => ({ id: i * 7919, name: `pet-${(i * 40503) % 65536}` }))),
  );
  const gz = gzipSync(records);
  t.ok(records.length > RATIO_FREE_BYTES && records.length / gz.length < 20, `${records.length} bytes in ${gz.length}`);
  t.same(await decodeContentCodings(gz, ['gzip'], 10 * MiB, undefined, 20), records);
});

t.test('bytes after the coded data (zlib stops at zero padding between gzip members) are refused', async (t) => {
  const first = gzipSync('q=hello');
  const second = gzipSync("&q=1' UNION SELECT password FROM users--");
  t.equal(
    (await decodeContentCodings(Buffer.concat([first, second]), ['gzip'], MiB)).toString(),
    "q=hello&q=1' UNION SELECT password FROM users--",
    'members back to back are one body, read whole',
  );
  const bodies: [string, string, Buffer][] = [
    ['gzip, a zero byte between two members', 'gzip', Buffer.concat([first, Buffer.alloc(1), second])],
    ['gzip, zero padding at the end', 'gzip', Buffer.concat([first, Buffer.alloc(16)])],
    ['x-gzip, a zero byte between two members', 'x-gzip', Buffer.concat([first, Buffer.alloc(1), second])],
    ['deflate, bytes after the zlib stream', 'deflate', Buffer.concat([deflateSync('a=1'), Buffer.from('&_method=DELETE')])],
    ['br, bytes after the stream', 'br', Buffer.concat([brotliCompressSync('a=1'), Buffer.from('&_method=DELETE')])],
  ];
  for (const [what, coding, body] of bodies)
    t.match(
      await refusal(decodeContentCodings(body, [coding], MiB)),
      { code: 'ERR_REQUEST_MALFORMED', rule: 'body.content_encoding', detail: /bytes after its/ },
      what,
    );
  // The inner coding of a stack likewise.
  t.match(await refusal(decodeContentCodings(brotliCompressSync(Buffer.concat([first, Buffer.alloc(1), second])), ['gzip', 'br'], MiB)), {
    code: 'ERR_REQUEST_MALFORMED',
  });
});

t.test('a deflate body that also reads as raw deflate is refused; ordinary zlib streams are not', async (t) => {
  const attack = "&q=1' UNION SELECT password FROM users--";
  const body = deflatePolyglot(attack);
  t.match(await refusal(decodeContentCodings(body, ['deflate'], MiB)), {
    code: 'ERR_REQUEST_MALFORMED',
    rule: 'body.content_encoding',
    detail: /also reads as raw deflate/,
  });
  t.match(
    await refusal(decodeContentCodings(gzipSync(body), ['deflate', 'gzip'], MiB)),
    { code: 'ERR_REQUEST_MALFORMED' },
    'inside a stack',
  );
  // Raw deflate sent as deflate was never accepted (not zlib); zlib streams of every level are.
  t.match(await refusal(decodeContentCodings(deflateRawSync('a=1'), ['deflate'], MiB)), { code: 'ERR_REQUEST_MALFORMED' });
  for (let level = 0; level <= 9; level++) {
    const form = Buffer.from(`a=${'x'.repeat(level * 100)}&b=2`);
    t.same(await decodeContentCodings(deflateSync(form, { level }), ['deflate'], MiB), form, `level ${level}`);
  }
});
