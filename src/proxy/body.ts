/** Request bodies of unknown length (chunked, or HTTP/2 without Content-Length), cut off at a limit. */
import type { Readable } from 'node:stream';
import { WardenError } from '../errors.js';
import { bodyBudgetExceeded, type BodyLease } from '../traffic/body-budget.js';

/**
 * The client went away, or its stream was reset, before the body ended: there is no one left to
 * answer on it, and nothing failed on the sidecar's side (the access log marks it aborted).
 */
export class ClientClosedError extends Error {
  readonly code = 'ERR_CLIENT_CLOSED';
  constructor() {
    // A signal, not a fault: no stack trace. Streams destroyed with it read its stack, which cost
    // ~36 µs per error (by hand, in a loop: 3.5 µs without); a flood of resets would pay that each.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super('the client went away before the body ended');
    Error.stackTraceLimit = limit;
  }
}

/** A body stream's error as the request path sees it: a reset connection or stream is the client leaving. */
export function bodyStreamError(err: Error): Error {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'ERR_HTTP2_STREAM_ERROR' ? new ClientClosedError() : err;
}

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

/**
 * Reads a whole request body for the stages that need it, up to `maxBytes` (413 beyond) and within
 * `timeoutMs` (408). Only routes whose plan has body stages pay for this. `lease`, when given, takes
 * each chunk from the memory budget as it arrives (503 past it); a declared length is taken before.
 */
export function readBody(body: Readable, maxBytes: number, timeoutMs: number, lease?: BodyLease): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new WardenError('ERR_REQUEST_TIMEOUT', { rule: 'limits.request_timeout', detail: 'The request body did not arrive in time.' }),
      );
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        reject(
          new WardenError('ERR_BODY_TOO_LARGE', { rule: 'limits.max_body_bytes', detail: `The body may be at most ${maxBytes} bytes.` }),
        );
        return;
      }
      if (lease !== undefined && !lease.take(chunk.length)) {
        cleanup();
        reject(bodyBudgetExceeded(lease, chunk.length));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(bodyStreamError(err));
    };
    const onClose = () => {
      if (!body.readableEnded) onError(new ClientClosedError());
    };
    const cleanup = () => {
      clearTimeout(timer);
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
  });
}
