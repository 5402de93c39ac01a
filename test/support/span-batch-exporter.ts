/** A span-batch exporter that keeps every batch it is given and answers at once (the fuzz tests of the OTLP encoders). */
import type { SpanBatch } from '../../src/telemetry/span-batch-queue.js';

export function collectingExporter() {
  const sent: SpanBatch[] = [];
  return {
    sent,
    export: (batch: SpanBatch, done: (r: { code: number }) => void) => {
      sent.push(batch);
      done({ code: 0 });
    },
    shutdown: async () => {},
  };
}
