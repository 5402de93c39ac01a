/**
 * A circuit breaker around an OTLP exporter: after a failed export, batches are dropped for a
 * while without being serialized or sent, so a collector that is down costs the sidecar nothing
 * beyond one failed attempt per `pause`. The records dropped are counted (telemetry-drops.ts).
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { DropCounter } from './telemetry-drops.js';

/** What is exported: an array of records, or a batch that says how many it holds. */
interface Counted {
  readonly length: number;
}

interface Exporter<T extends Counted> {
  export(items: T, resultCallback: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
  forceFlush?(): Promise<void>;
  /** Gives up the exports in flight (their caller has counted them): span-batch-queue.ts. */
  abort?(): void;
}

export function withExportBreaker<T extends Counted, E extends Exporter<T>>(inner: E, pauseMs: number, dropped: DropCounter): E {
  let closedUntil = 0;
  // Exports started before the last abort: their caller gave them up and counted them, so their late failures are not counted again.
  let aborts = 0;
  const wrapped: Exporter<T> = {
    export(items, resultCallback) {
      if (Date.now() < closedUntil) {
        dropped.add('breaker_open', items.length);
        resultCallback({ code: ExportResultCode.FAILED });
        return;
      }
      const round = aborts;
      inner.export(items, (result) => {
        if (result.code !== ExportResultCode.SUCCESS && round === aborts) {
          closedUntil = Date.now() + pauseMs;
          dropped.add('export_failed', items.length);
        }
        resultCallback(result);
      });
    },
    // A collector that did not answer in time is treated as one that failed.
    abort() {
      aborts++;
      closedUntil = Date.now() + pauseMs;
      inner.abort?.();
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
  return wrapped as E;
}
