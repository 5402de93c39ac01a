/**
 * Fuzz: request bodies with a Content-Encoding (src/net/content-coding.ts). Any bytes, coded with
 * any stack of gzip, deflate and br, named in any spelling of the header: decoded back to the same
 * bytes; with a limit below their size, refused as too large (never decoded past it); cut short or
 * corrupted, refused as malformed (never accepted as something else).
 */
import t from 'tap';
import fc from 'fast-check';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { contentCodings, decodeContentCodings } from '../../src/net/content-coding.js';
import { WardenError } from '../../src/errors.js';
import { fuzzAsync } from './fuzz-budget.js';

const ENCODERS: Record<string, (b: Buffer) => Buffer> = {
  gzip: gzipSync,
  'x-gzip': gzipSync,
  deflate: deflateSync,
  br: brotliCompressSync,
};
/** The refusal of a deflate body that also reads as raw deflate, which a zlib stream is by chance once in 65 536. */
const readsTwoWays = (e: unknown) =>
  e instanceof WardenError && e.code === 'ERR_REQUEST_MALFORMED' && /also reads as raw deflate/.test(e.detail ?? '');

const coding = fc.constantFrom('gzip', 'x-gzip', 'deflate', 'br');
const spelled = (c: string) => fc.constantFrom(c, c.toUpperCase(), ` ${c} `);

const encode = (bytes: Buffer, codings: readonly string[]) => codings.reduce((b, c) => (ENCODERS[c] as (b: Buffer) => Buffer)(b), bytes);
const header = (codings: readonly string[], spellings: readonly string[], identity: boolean) =>
  [...(identity ? ['identity'] : []), ...spellings].join(',');

const codedBodies = fc
  .tuple(fc.uint8Array({ maxLength: 4096 }), fc.array(coding, { minLength: 1, maxLength: 3 }), fc.boolean())
  .chain(([bytes, codings, identity]) =>
    fc.tuple(fc.constant(Buffer.from(bytes)), fc.constant(codings), fc.tuple(...codings.map(spelled)), fc.constant(identity)),
  );

t.test('any stack of codings decodes back to the bytes sent', async (t) => {
  await fuzzAsync(
    t,
    'content-coding.round-trip',
    [codedBodies],
    async ([bytes, codings, spellings, identity]) => {
      const named = contentCodings(header(codings, spellings, identity));
      if (named.join() !== codings.join()) throw new Error(`header read as ${named.join()}, not ${codings.join()}`);
      const decoded = await decodeContentCodings(encode(bytes, codings), named, 1 << 20).catch((e: unknown) => e);
      // One zlib stream in 65 536 also reads as raw deflate by chance, and is refused (defect 132).
      if (readsTwoWays(decoded)) return;
      if (!(decoded instanceof Buffer)) throw new Error(`refused: ${String(decoded)}`);
      if (!decoded.equals(bytes)) throw new Error(`decoded ${decoded.length} bytes, not the ${bytes.length} sent`);
    },
    { runs: 300 },
  );
});

t.test('never decoded past the limit; a damaged body is refused, not read', async (t) => {
  await fuzzAsync(
    t,
    'content-coding.limits',
    [codedBodies, fc.nat(), fc.nat()],
    async ([bytes, codings], cutAt, flipAt) => {
      const coded = encode(bytes, codings);
      if (bytes.length > 0) {
        const limit = cutAt % bytes.length;
        const err = await decodeContentCodings(coded, codings, limit).then(
          () => undefined,
          (e: unknown) => e,
        );
        // The innermost step may be the one over the limit, or an outer one already is.
        if (readsTwoWays(err)) return;
        if (!(err instanceof WardenError) || err.code !== 'ERR_BODY_TOO_LARGE')
          throw new Error(`a ${bytes.length}-byte body under a ${limit}-byte limit: ${String(err)}`);
      }
      const damaged = Buffer.from(coded);
      const at = flipAt % damaged.length;
      damaged.writeUInt8(damaged.readUInt8(at) ^ 0xff, at);
      const truncated = coded.subarray(0, cutAt % coded.length);
      for (const [what, body] of [
        ['damaged', damaged],
        ['truncated', truncated],
      ] as const) {
        const result = await decodeContentCodings(body, codings, 1 << 20).then(
          (b) => b,
          (e: unknown) => e,
        );
        // A flipped byte may still decode (brotli and deflate have no checksum on every path), but
        // only ever to a result within the limit, or to a typed refusal: never a crash or a hang.
        if (result instanceof Buffer) continue;
        if (!(result instanceof WardenError) || !['ERR_REQUEST_MALFORMED', 'ERR_BODY_TOO_LARGE'].includes(result.code))
          throw new Error(`${what}: ${String(result)}`);
      }
    },
    { runs: 300 },
  );
});

t.test('an unknown coding or too many are refused with what is accepted', async (t) => {
  for (const codings of [['zstd'], ['gzip', 'compress'], ['gzip', 'gzip', 'gzip', 'gzip']]) {
    const err = await decodeContentCodings(Buffer.from('x'), codings, 100).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.match(err, { code: 'ERR_MEDIA_TYPE_UNSUPPORTED', headers: { 'accept-encoding': 'gzip, deflate, br' } }, codings.join());
  }
  t.same(contentCodings(undefined), []);
  t.same(contentCodings('identity'), []);
  t.same(contentCodings(['gzip', 'br']), ['gzip', 'br']);
});
