/**
 * One export of a queue that sends one batch at a time (span-batch-queue.ts, record-batch-queue.ts),
 * given up after `timeoutMs` whatever the exporter does: the library's timeout is the socket's
 * idle time, which a collector trickling its answer resets with each byte, and one export that
 * never ended stopped its queue for good (docs/adversarial.md, defect 110).
 */
import type { ExportResult } from '@opentelemetry/core';
import type { DropCounter } from './telemetry-drops.js';

export interface DeadlineExporter<B> {
  export(batch: B, resultCallback: (result: ExportResult) => void): void;
  /** Ends the export in flight now (its request destroyed): the queue has given it up. */
  abort?(): void;
}

/**
 * Resolves when the export answers, throws, or is given up. Failures are the exporter's to count
 * (export-breaker.ts); an export that throws or is given up is counted here, its late answer ignored.
 */
export function exportWithDeadline<B extends { readonly length: number }>(
  exporter: DeadlineExporter<B>,
  batch: B,
  timeoutMs: number,
  dropped: DropCounter,
): Promise<void> {
  return new Promise<void>((resolve) => {
    const deadline = setTimeout(() => {
      dropped.add('export_timeout', batch.length);
      resolve(); // the next export starts after this callback, once abort has ended this one
      try {
        exporter.abort?.();
      } catch {
        // Given up either way.
      }
    }, timeoutMs);
    deadline.unref(); // the export's own request keeps the process alive while it runs
    try {
      exporter.export(batch, () => {
        clearTimeout(deadline);
        resolve();
      });
    } catch {
      clearTimeout(deadline);
      dropped.add('export_failed', batch.length);
      resolve();
    }
  });
}
