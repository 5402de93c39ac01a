/**
 * A circuit breaker around an OTLP exporter: after a failed export, batches are dropped for a
 * while without being serialized or sent, so a collector that is down costs the sidecar nothing
 * beyond one failed attempt per `pause`. The records dropped are counted.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';

/** What is exported: an array of records, or a batch that says how many it holds. */
interface Counted {
  readonly length: number;
}

interface Exporter<T extends Counted> {
  export(items: T, resultCallback: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
  forceFlush?(): Promise<void>;
}

export interface DropCounter {
  dropped: number;
}

export function withExportBreaker<T extends Counted, E extends Exporter<T>>(inner: E, pauseMs: number, counter: DropCounter): E {
  let closedUntil = 0;
  const wrapped: Exporter<T> = {
    export(items, resultCallback) {
      if (Date.now() < closedUntil) {
        counter.dropped += items.length;
        resultCallback({ code: ExportResultCode.FAILED });
        return;
      }
      inner.export(items, (result) => {
        if (result.code !== ExportResultCode.SUCCESS) {
          closedUntil = Date.now() + pauseMs;
          counter.dropped += items.length;
        }
        resultCallback(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
  return wrapped as E;
}
