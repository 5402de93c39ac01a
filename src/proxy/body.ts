/** Request bodies of unknown length (chunked, or HTTP/2 without Content-Length), cut off at a limit. */
import type { Readable } from 'node:stream';
import { WardenError } from '../errors.js';

/**
 * Streams `body` through unchanged and fails with ERR_BODY_TOO_LARGE as soon as more than
 * `maxBytes` arrive — before the excess is forwarded, without buffering anything.
 */
export async function* limitBody(body: AsyncIterable<Buffer> & Pick<Readable, 'destroy'>, maxBytes: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of body) {
    seen += chunk.length;
    if (seen > maxBytes) {
      throw new WardenError('ERR_BODY_TOO_LARGE', { rule: 'limits.max_body_bytes', detail: `The body may be at most ${maxBytes} bytes.` });
    }
    yield chunk;
  }
}
