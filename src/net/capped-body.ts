/**
 * A response body read whole, up to a bound: the IdP's answers, the CA's, an OpenAPI document by
 * URL. Past the bound the body is destroyed (the connection dropped, nothing more read) and the
 * caller's own error thrown, so an endless answer costs at most `maxBytes` of memory.
 */
import type { Dispatcher } from 'undici';

export async function readCappedBody(body: Dispatcher.ResponseData['body'], maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
