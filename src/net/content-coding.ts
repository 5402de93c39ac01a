/**
 * A request body's Content-Encoding undone for the stages that read it (validation, the waf, the
 * `_method` check); the backend still gets the body as sent. Express's body parsers inflate gzip
 * and deflate bodies by default and ASP.NET Core's request decompression also takes br, so a
 * stage reading the compressed bytes would check something else than the backend reads: an
 * attack gzipped past the waf. Decoded in zlib's thread pool as a stream, never past `maxBytes` (a
 * 10 KB gzip bomb expands to gigabytes) nor past the memory left for bodies (`reserve`).
 */
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { WardenError } from '../errors.js';

const DECODERS: Readonly<Record<string, () => Transform>> = {
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

function decodeOnce(body: Buffer, coding: string, maxBytes: number, reserve: Reserve): Promise<Buffer> {
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
      if (size > maxBytes) {
        return fail(
          new WardenError('ERR_BODY_TOO_LARGE', {
            rule: 'limits.max_body_bytes',
            detail: `The body, decoded from ${coding}, may be at most ${maxBytes} bytes.`,
          }),
        );
      }
      const refused = reserve(chunk.length);
      if (refused) return fail(refused);
      chunks.push(chunk);
    });
    stream.on('error', () =>
      fail(new WardenError('ERR_REQUEST_MALFORMED', { rule: 'body.content_encoding', detail: `The body is not valid ${coding}.` })),
    );
    stream.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks, size));
    });
    stream.end(body);
  });
}

/** The body with its codings undone, last applied first; at most `maxBytes` at every step. */
export async function decodeContentCodings(
  body: Buffer,
  codings: readonly string[],
  maxBytes: number,
  reserve: Reserve = NO_RESERVE,
): Promise<Buffer> {
  if (codings.length > MAX_CODINGS) {
    throw new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
      rule: 'body.content_encoding',
      detail: `A body may be encoded at most ${MAX_CODINGS} times.`,
      headers: { 'accept-encoding': ACCEPTED_REQUEST_CODINGS },
    });
  }
  let decoded = body;
  for (let i = codings.length - 1; i >= 0; i--) decoded = await decodeOnce(decoded, codings[i] as string, maxBytes, reserve);
  return decoded;
}
