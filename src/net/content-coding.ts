/**
 * A request body's Content-Encoding undone for the stages that read it (validation, the waf, the
 * `_method` check), and forwarded so (handler.ts stageBody). Express's body parsers inflate gzip
 * and deflate bodies by default and ASP.NET Core's request decompression also takes br, so a
 * stage reading the compressed bytes would check something else than the backend reads: an
 * attack gzipped past the waf. Decoded in zlib's thread pool as a stream, never past `maxBytes` (a
 * 10 KB gzip bomb expands to gigabytes), nor past `maxRatio` times the bytes sent, nor past the
 * memory left for bodies (`reserve`).
 */
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, type Zlib } from 'node:zlib';
import { WardenError } from '../errors.js';

const DECODERS: Readonly<Record<string, () => Transform & Zlib>> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/**
 * Takes `bytes` more of decoded body into the memory the sidecar holds for bodies
 * (limits.max_buffered_bytes), or says why it cannot. Decoded bytes are taken as they come out:
 * a 10 KB gzip body that expands to 10 MiB must not count as 10 KB (thirty of them at once ran a
 * sidecar with a 192 MiB heap out of memory).
 */
export type Reserve = (bytes: number) => WardenError | undefined;
const NO_RESERVE: Reserve = () => undefined;

/** Codings stacked on one body beyond this are refused: no client needs them, each is a decode. */
const MAX_CODINGS = 3;

/**
 * Decoded bytes up to this many are never refused for their ratio (limits.max_decoded_ratio): small
 * repetitive bodies compress far, and 64 KiB of the densest JSON (`[{},{},…]`) parses in ~25 ms.
 */
export const RATIO_FREE_BYTES = 64 * 1024;

/** What a 415 for an unknown coding names (RFC 7694: Accept-Encoding in the response). */
export const ACCEPTED_REQUEST_CODINGS = 'gzip, deflate, br';

/** A body the stages that read it as it arrives (the malware scan, multipart) would get encoded. */
export function encodedForObservers(): WardenError {
  return new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
    rule: 'body.content_encoding',
    detail: 'This body is scanned or taken apart as it arrives, so it must be sent without a Content-Encoding.',
    headers: { 'accept-encoding': 'identity' },
  });
}

/**
 * A coded body sent as part of a representation (Content-Range): its range counts coded bytes, and
 * a stage that reads the body forwards it decoded, where the same range would place other bytes.
 * Refused rather than forwarded with a range that no longer says where they go.
 */
export function rangedCodedBody(): WardenError {
  return new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
    rule: 'body.content_encoding',
    detail:
      'A body with a Content-Range is checked and forwarded decoded here, where its range would be wrong: send it without a Content-Encoding.',
    headers: { 'accept-encoding': 'identity' },
  });
}

/** The codings applied to a body, in the order they were applied; [] for none (or only identity). */
export function contentCodings(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  const list = (Array.isArray(header) ? header.join(',') : header).split(',');
  const codings: string[] = [];
  for (const raw of list) {
    const coding = raw.trim().toLowerCase();
    if (coding !== '' && coding !== 'identity') codings.push(coding);
  }
  return codings;
}

/** How far one body may be decoded, and the refusal past it (the tighter of two limits). */
interface DecodeCap {
  readonly bytes: number;
  tooLarge(coding: string): WardenError;
}

function capOf(sentBytes: number, maxBytes: number, maxRatio: number): DecodeCap {
  const ratioBytes = Number.isFinite(maxRatio) ? Math.max(RATIO_FREE_BYTES, sentBytes * maxRatio) : Infinity;
  if (ratioBytes < maxBytes)
    return {
      bytes: ratioBytes,
      tooLarge: (coding) =>
        new WardenError('ERR_BODY_TOO_LARGE', {
          rule: 'limits.max_decoded_ratio',
          detail: `The body, decoded from ${coding}, may be at most ${maxRatio} times the ${sentBytes} bytes sent.`,
        }),
    };
  return {
    bytes: maxBytes,
    tooLarge: (coding) =>
      new WardenError('ERR_BODY_TOO_LARGE', {
        rule: 'limits.max_body_bytes',
        detail: `The body, decoded from ${coding}, may be at most ${maxBytes} bytes.`,
      }),
  };
}

const malformed = (detail: string) => new WardenError('ERR_REQUEST_MALFORMED', { rule: 'body.content_encoding', detail });

/**
 * Whether a `deflate` body also reads as raw deflate (RFC 1951), as older ASP.NET Core
 * (DeflateStream) and other servers decode `deflate`. A zlib header's first byte (CM 8) reads as a
 * stored, non-final raw block whose length is the next two bytes and its complement the two after:
 * when they match, a raw reader reads on, into bytes the zlib reading may take as something else
 * entirely (a benign form one way, an injection the other). Legitimate zlib streams match by chance
 * only (1 in 65 536), so the body is refused rather than read twice; a raw reader that got no
 * further errors out.
 */
function alsoRawDeflate(body: Buffer): boolean {
  return body.length >= 5 && ((body[0] as number) & 0x06) === 0 && body.readUInt16LE(1) === (~body.readUInt16LE(3) & 0xffff);
}

function decodeOnce(body: Buffer, coding: string, cap: DecodeCap, reserve: Reserve): Promise<Buffer> {
  const decoder = DECODERS[coding];
  if (decoder === undefined) {
    return Promise.reject(
      new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
        rule: 'body.content_encoding',
        detail: `A body in Content-Encoding ${coding.slice(0, 40)} cannot be inspected here; send it as is or in ${ACCEPTED_REQUEST_CODINGS}.`,
        headers: { 'accept-encoding': ACCEPTED_REQUEST_CODINGS },
      }),
    );
  }
  if (coding === 'deflate' && alsoRawDeflate(body))
    return Promise.reject(malformed('The deflate body also reads as raw deflate, differently; send it as gzip or br.'));
  return new Promise((resolve, reject) => {
    const stream = decoder();
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    const fail = (error: WardenError) => {
      if (failed) return;
      failed = true;
      stream.destroy();
      reject(error);
    };
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > cap.bytes) return fail(cap.tooLarge(coding));
      const refused = reserve(chunk.length);
      if (refused) return fail(refused);
      chunks.push(chunk);
    });
    stream.on('error', () => fail(malformed(`The body is not valid ${coding}.`)));
    stream.on('end', () => {
      if (failed) return;
      // zlib ends quietly at a zero byte after a gzip member (padding) or at any bytes after a
      // zlib or br stream; other decoders (Python's gzip, gzip(1)) read a further member there,
      // which no stage here would have seen.
      if (stream.bytesWritten < body.length)
        return fail(malformed(`The body holds ${body.length - stream.bytesWritten} bytes after its ${coding} data.`));
      resolve(Buffer.concat(chunks, size));
    });
    stream.end(body);
  });
}

/**
 * The body with its codings undone, last applied first; at every step at most `maxBytes`, and at
 * most `maxRatio` times the bytes sent once past RATIO_FREE_BYTES: 32 bytes of br that decode to
 * 9 MiB of `[{},{},…]` held the event loop for 3 s in JSON.parse (adversarial.md, defect 130).
 */
export async function decodeContentCodings(
  body: Buffer,
  codings: readonly string[],
  maxBytes: number,
  reserve: Reserve = NO_RESERVE,
  maxRatio = Infinity,
): Promise<Buffer> {
  if (codings.length > MAX_CODINGS) {
    throw new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
      rule: 'body.content_encoding',
      detail: `A body may be encoded at most ${MAX_CODINGS} times.`,
      headers: { 'accept-encoding': ACCEPTED_REQUEST_CODINGS },
    });
  }
  // Against the bytes sent, at every step: two stacked codings must not multiply their ratios.
  const cap = capOf(body.length, maxBytes, maxRatio);
  let decoded = body;
  for (let i = codings.length - 1; i >= 0; i--) decoded = await decodeOnce(decoded, codings[i] as string, cap, reserve);
  return decoded;
}
