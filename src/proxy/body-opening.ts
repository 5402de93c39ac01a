/**
 * A streamed body's opening, read before it is forwarded on a route whose waf reads a body that
 * opens like JSON whatever its type (plan.ts `jsonOpening`). Its first bytes decide: a body that
 * does not open like JSON (an image, an archive) is put back as it was read and streams on, held
 * no longer than its first chunk; one that does is read whole for the body stages, up to
 * `holdBytes` (limits.body_memory_bytes): past it, it is put back too, and the waf's oversize
 * policy decides (refused, or streamed uninspected).
 */
import type { Readable } from 'node:stream';
import { WardenError } from '../errors.js';
import type { BodyObserver } from '../pipeline/stage.js';
import { JsonOpening } from '../net/json-opening.js';
import { bodyStreamError, ClientClosedError } from './body.js';
import { bodyBudgetExceeded, type BodyLease } from '../traffic/body-budget.js';

export type OpeningOutcome =
  /** The body ended while it was read: all of it, and whether it opens like JSON. */
  | { readonly kind: 'whole'; readonly body: Buffer; readonly json: boolean }
  /** It does not open like JSON: what was read is back at the front of the source, which is paused. */
  | { readonly kind: 'stream' }
  /** It opens like JSON and is longer than holdBytes: put back the same way. */
  | { readonly kind: 'too-large' };

export interface OpeningOptions {
  /** The route's max_body_bytes: 413 past it. */
  maxBytes: number;
  holdBytes: number;
  timeoutMs: number;
  /** Takes what is held from the memory budget, given back when it is put back. */
  lease: BodyLease | undefined;
}

/**
 * Reads `body` until its opening decides (see above); `done` is called once, from the stream's
 * events (the caller must not throw). What is put back is unshifted within the 'data' event that
 * decided, before the stream can end.
 */
export function readOpening(
  body: Readable,
  options: OpeningOptions,
  done: (err: Error | undefined, outcome?: OpeningOutcome) => void,
): void {
  const opening = new JsonOpening();
  const chunks: Buffer[] = [];
  let size = 0;
  /** Of it, what the lease holds. */
  let taken = 0;
  let finished = false;
  const finish = (err: Error | undefined, outcome?: OpeningOutcome) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    body.off('data', onData);
    body.off('end', onEnd);
    body.off('error', onError);
    body.off('close', onClose);
    done(err, outcome);
  };
  /** Back to the front of the source, paused: the forwarding reads it from there. */
  const putBack = (kind: 'stream' | 'too-large') => {
    // Paused first, so the bytes wait in the source's buffer for whoever reads it next.
    body.pause();
    body.unshift(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    chunks.length = 0;
    options.lease?.giveBack(taken);
    finish(undefined, { kind });
  };
  const onData = (chunk: Buffer) => {
    if (size + chunk.length > options.maxBytes)
      return finish(
        new WardenError('ERR_BODY_TOO_LARGE', {
          rule: 'limits.max_body_bytes',
          detail: `The body may be at most ${options.maxBytes} bytes.`,
        }),
      );
    const decided = opening.push(chunk);
    chunks.push(chunk);
    size += chunk.length;
    if (decided === 'other') return putBack('stream');
    // Held: the white space before a decision too (bounded the same way).
    if (options.lease !== undefined && !options.lease.take(chunk.length)) return finish(bodyBudgetExceeded(options.lease, chunk.length));
    taken += chunk.length;
    if (size > options.holdBytes) putBack('too-large');
  };
  const onEnd = () =>
    finish(undefined, {
      kind: 'whole',
      body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size),
      json: opening.decided === 'json',
    });
  const onError = (err: Error) => finish(bodyStreamError(err));
  const onClose = () => {
    if (!body.readableEnded) finish(new ClientClosedError());
  };
  const timer = setTimeout(
    () =>
      finish(
        new WardenError('ERR_REQUEST_TIMEOUT', { rule: 'limits.request_timeout', detail: 'The request body did not arrive in time.' }),
      ),
    options.timeoutMs,
  );
  // Ended already, so empty (see readBodyThen).
  if (body.readableEnded) return onEnd();
  body.on('data', onData);
  body.on('end', onEnd);
  body.on('error', onError);
  body.on('close', onClose);
}

/**
 * The same decision for a body the streaming stages take in (a scan route): an observer that only
 * looks at the first bytes. `opensJson` once the body has arrived.
 */
export function openingObserver(): BodyObserver & { readonly opensJson: boolean } {
  const opening = new JsonOpening();
  return {
    write(chunk) {
      if (opening.decided === undefined) opening.push(chunk);
    },
    end: () => Promise.resolve(undefined),
    abort: () => undefined,
    get opensJson() {
      return opening.decided === 'json';
    },
  };
}
