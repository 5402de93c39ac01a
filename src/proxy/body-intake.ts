/**
 * Takes in a request body for the stages that need it: held in a SpooledBody (memory, then a temp
 * file) and shown to the streaming stages chunk by chunk as it arrives, so a malware scan runs in
 * parallel with the upload instead of after it. Bounded by `maxBytes` (413) and `timeoutMs` (408).
 * The client is paused while the disk or an observer (clamd) falls behind, so neither grows the heap.
 */
import type { Readable } from 'node:stream';
import { WardenError } from '../errors.js';
import type { BodyObserver } from '../pipeline/stage.js';
import { bodyStreamError, ClientClosedError } from './body.js';
import { SpooledBody } from './spooled-body.js';
import { bodyBudgetExceeded, type BodyLease } from '../traffic/body-budget.js';

/** Unwritten spool bytes above which the client is paused until the disk catches up. */
const SPOOL_HIGH_WATER = 4 * 1024 * 1024;

export interface BodyIntakeOptions {
  maxBytes: number;
  timeoutMs: number;
  /** Above this the body spills to a temp file (= maxBytes: always in memory). */
  memoryLimit: number;
  spoolDir?: string | undefined;
  observers: readonly BodyObserver[];
  /** Takes what stays in memory from the memory budget as it arrives (a declared length is taken before). */
  lease?: BodyLease | undefined;
}

export function takeBody(body: Readable, options: BodyIntakeOptions): Promise<SpooledBody> {
  const spool = new SpooledBody(options.memoryLimit, options.spoolDir);
  const { observers } = options;
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      cleanup();
      for (const o of observers) o.abort();
      spool.dispose();
      reject(err);
    };
    const timer = setTimeout(
      () =>
        fail(
          new WardenError('ERR_REQUEST_TIMEOUT', { rule: 'limits.request_timeout', detail: 'The request body did not arrive in time.' }),
        ),
      options.timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      if (spool.size + chunk.length > options.maxBytes) {
        fail(
          new WardenError('ERR_BODY_TOO_LARGE', {
            rule: 'limits.max_body_bytes',
            detail: `The body may be at most ${options.maxBytes} bytes.`,
          }),
        );
        return;
      }
      const inMemory = Math.min(chunk.length, options.memoryLimit - spool.size);
      if (options.lease !== undefined && inMemory > 0 && !options.lease.take(inMemory)) {
        fail(bodyBudgetExceeded(options.lease, inMemory));
        return;
      }
      spool.append(chunk);
      // A full spool disk refuses the upload now rather than once all of it has arrived.
      if (spool.failure !== undefined) return fail(spool.failure);
      for (const o of observers) o.write(chunk);
      if (body.isPaused()) return;
      const waits: Promise<void>[] = [];
      if (spool.pendingBytes > SPOOL_HIGH_WATER) waits.push(spool.flushed());
      for (const o of observers) {
        const drained = o.drained?.();
        if (drained !== undefined) waits.push(drained);
      }
      if (waits.length === 0) return;
      body.pause();
      Promise.all(waits).then(
        () => body.resume(),
        (err: unknown) => fail(err as Error),
      );
    };
    const onEnd = () => {
      cleanup();
      spool.flushed().then(
        () => resolve(spool),
        (err: unknown) => {
          for (const o of observers) o.abort();
          spool.dispose();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    };
    const onError = (err: Error) => fail(bodyStreamError(err));
    const onClose = () => {
      if (!body.readableEnded) fail(new ClientClosedError());
    };
    const cleanup = () => {
      clearTimeout(timer);
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
    };
    // Ended already, so empty (see readBodyThen): its 'end' has passed and does not come again.
    if (body.readableEnded) return onEnd();
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
  });
}
