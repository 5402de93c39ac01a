/**
 * A serializer that reads the collector's answer itself: a `partial_success` is handed to
 * `onRejected` (counted as dropped, telemetry-drops.ts), read in bounded time (partial-success.ts),
 * and the library is given an empty answer. Its own handler would only `diag.warn` it, a no-op
 * since Warden registers no diag logger, after a JSON.stringify of the whole of it: a collector
 * rejecting every span and log record went unseen (red team 26, F4).
 */
import type { ISerializer } from '@opentelemetry/otlp-transformer';
import { partialSuccessOfJson, partialSuccessOfProtobuf } from './partial-success.js';

/** `rejected`: at most the items of the batch last sent, whatever the collector claims. */
export type OnRejected = (rejected: number, message: string) => void;

export function countingRejections<T, R>(
  serializer: ISerializer<T, R>,
  json: boolean,
  countOf: (items: T) => number,
  onRejected: OnRejected,
): ISerializer<T, R> {
  const read = json ? partialSuccessOfJson : partialSuccessOfProtobuf;
  // The queues send one batch at a time (and a retry resends it): the answer is to the last one
  // serialized. A late answer to a given-up export is clamped by the next batch instead.
  let sent = 0;
  return {
    serializeRequest(items) {
      sent = countOf(items);
      return serializer.serializeRequest(items);
    },
    deserializeResponse(data) {
      const answer = data.length === 0 ? undefined : read(data);
      if (answer !== undefined && answer.rejected > 0) onRejected(Math.min(answer.rejected, sent), answer.message);
      return {} as R;
    },
  };
}
