/**
 * A request body's Content-Encoding undone for the stages that read it (validation, the waf, the
 * `_method` check); the backend still gets the body as sent. Express's body parsers inflate gzip
 * and deflate bodies by default and ASP.NET Core's request decompression also takes br, so a
 * stage reading the compressed bytes would check something else than the backend reads: an
 * attack gzipped past the waf. Decoded in zlib's thread pool, never past `maxBytes` (a 10 KB
 * gzip bomb expands to gigabytes).
 */
import { brotliDecompress, gunzip, inflate, type InputType, type ZlibOptions } from 'node:zlib';
import { WardenError } from '../errors.js';

type Decoder = (buffer: InputType, options: ZlibOptions, callback: (error: Error | null, result: Buffer) => void) => void;

const DECODERS: Readonly<Record<string, Decoder>> = {
  gzip: gunzip,
  'x-gzip': gunzip,
  deflate: inflate,
  br: brotliDecompress,
};

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

function decodeOnce(body: Buffer, coding: string, maxBytes: number): Promise<Buffer> {
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
    // zlib takes no limit below 1: a smaller one is checked on the result.
    decoder(body, { maxOutputLength: Math.max(1, maxBytes) }, (err, result) => {
      if (!err && result.length <= maxBytes) return resolve(result);
      if (!err || (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        reject(
          new WardenError('ERR_BODY_TOO_LARGE', {
            rule: 'limits.max_body_bytes',
            detail: `The body, decoded from ${coding}, may be at most ${maxBytes} bytes.`,
          }),
        );
      } else {
        reject(new WardenError('ERR_REQUEST_MALFORMED', { rule: 'body.content_encoding', detail: `The body is not valid ${coding}.` }));
      }
    });
  });
}

/** The body with its codings undone, last applied first; at most `maxBytes` at every step. */
export async function decodeContentCodings(body: Buffer, codings: readonly string[], maxBytes: number): Promise<Buffer> {
  if (codings.length > MAX_CODINGS) {
    throw new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
      rule: 'body.content_encoding',
      detail: `A body may be encoded at most ${MAX_CODINGS} times.`,
      headers: { 'accept-encoding': ACCEPTED_REQUEST_CODINGS },
    });
  }
  let decoded = body;
  for (let i = codings.length - 1; i >= 0; i--) decoded = await decodeOnce(decoded, codings[i] as string, maxBytes);
  return decoded;
}
