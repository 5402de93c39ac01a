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
 * `done` is called once, with the body or the error, when the body has ended or failed (from the
 * stream's event, so the caller must not throw). No promise, and one object holds the read's state
 * and listeners: a small JSON POST is read this way on every request.
 */
export function readBodyThen(
  body: Readable,
  maxBytes: number,
  timeoutMs: number,
  lease: BodyLease | undefined,
  done: (err: Error | undefined, body?: Buffer) => void,
): void {
  new BodyRead(body, maxBytes, lease, done).start(timeoutMs);
}

const EMPTY = Buffer.alloc(0);

class BodyRead {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly onData = (chunk: Buffer) => this.data(chunk);
  private readonly onEnd = () => this.finish(undefined, this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size));
  private readonly onError = (err: Error) => this.finish(bodyStreamError(err));
  private readonly onClose = () => {
    if (!this.body.readableEnded) this.finish(new ClientClosedError());
  };

  constructor(
    private readonly body: Readable,
    private readonly maxBytes: number,
    private readonly lease: BodyLease | undefined,
    private readonly done: (err: Error | undefined, body?: Buffer) => void,
  ) {}

  start(timeoutMs: number): void {
    this.timer = setTimeout(onBodyTimeout, timeoutMs, this);
    const body = this.body;
    // Ended already, so empty (Warden is its only reader): an h2 body of one empty DATA frame with
    // END_STREAM ends while an asynchronous stage runs, and its 'end' does not come again.
    if (body.readableEnded) return this.finish(undefined, EMPTY);
    // `on`, not `once`: finish removes all four at the first that fires, and `once` wraps each in a
    // closure and a state object of its own.
    body.on('data', this.onData);
    body.on('end', this.onEnd);
    body.on('error', this.onError);
    body.on('close', this.onClose);
  }

  timedOut(): void {
    this.finish(
      new WardenError('ERR_REQUEST_TIMEOUT', { rule: 'limits.request_timeout', detail: 'The request body did not arrive in time.' }),
    );
  }

  private data(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      this.finish(
        new WardenError('ERR_BODY_TOO_LARGE', { rule: 'limits.max_body_bytes', detail: `The body may be at most ${this.maxBytes} bytes.` }),
      );
      return;
    }
    if (this.lease !== undefined && !this.lease.take(chunk.length)) {
      this.finish(bodyBudgetExceeded(this.lease, chunk.length));
      return;
    }
    this.chunks.push(chunk);
  }

  /** Once: the listeners, the timer and the chunks go, then the caller hears of it. */
  private finish(err: Error | undefined, read?: Buffer): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    // The caller runs on from here (the stages, the forwarding) while this read is still on the
    // stack: chunks kept here would double a large body's memory until it has gone upstream.
    this.chunks.length = 0;
    const body = this.body;
    body.off('data', this.onData);
    body.off('end', this.onEnd);
    body.off('error', this.onError);
    body.off('close', this.onClose);
    this.done(err, read);
  }
}

function onBodyTimeout(read: BodyRead): void {
  read.timedOut();
}
