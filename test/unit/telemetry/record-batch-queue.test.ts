/**
 * The export queue of log records and of the SDK's spans (src/telemetry/record-batch-queue.ts):
 * the SDK's batch limits, every record dropped counted with its reason; and the throttled warning
 * of telemetry-drops.ts. Before,
 * the SDK's processors dropped a full queue's records into a no-op meter: uncounted.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExportResult } from '@opentelemetry/core';
import { RecordBatchQueue } from '../../../src/telemetry/record-batch-queue.js';
import { TelemetryDrops } from '../../../src/telemetry/telemetry-drops.js';

/** An exporter that answers only when told to (a stalled collector, if never told). */
function heldExporter<T>() {
  const sent: T[][] = [];
  const pending: ((r: ExportResult) => void)[] = [];
  return {
    sent,
    pending,
    export(batch: T[], done: (r: ExportResult) => void) {
      sent.push(batch);
      pending.push(done);
    },
    async shutdown() {},
    async answerAll() {
      for (let i = 0; i < 100 && pending.length > 0; i++) {
        pending.shift()?.({ code: 0 });
        await sleep(1);
      }
    },
  };
}

const limits = (maxQueueSize: number, maxExportBatchSize: number, exportTimeoutMillis = 60_000) => ({
  maxQueueSize,
  maxExportBatchSize,
  scheduledDelayMillis: 60_000,
  exportTimeoutMillis,
});

t.test('a full queue drops and counts; a batch sent makes room', async (t) => {
  const drops = new TelemetryDrops();
  const exporter = heldExporter<number>();
  const queue = new RecordBatchQueue<number>(exporter, limits(4, 2), drops.counter('traces'));
  for (let i = 0; i < 9; i++) queue.add(i);
  t.same(exporter.sent, [[0, 1]], 'one batch in export, the next waits for its answer');
  t.equal(queue.length, 4);
  t.equal(drops.counts.traces.queue_full, 3, 'the three past maxQueueSize are counted');
  await exporter.answerAll();
  t.same(
    exporter.sent,
    [
      [0, 1],
      [2, 3],
      [4, 5],
    ],
    'the rest goes one batch at a time',
  );
  t.same(drops.counts.logs, { queue_full: 0, export_failed: 0, export_timeout: 0, breaker_open: 0 }, 'counted under its signal');
});

t.test('an export given up at its deadline, or that throws, is counted with its reason', async (t) => {
  const drops = new TelemetryDrops();
  const exporter = heldExporter<number>();
  const queue = new RecordBatchQueue<number>(exporter, limits(10, 2, 50), drops.counter('logs'));
  queue.add(1);
  queue.add(2);
  for (let i = 0; i < 100 && exporter.sent.length < 1; i++) await sleep(5);
  queue.add(3);
  queue.add(4);
  for (let i = 0; i < 100 && exporter.sent.length < 2; i++) await sleep(10);
  t.equal(exporter.sent.length, 2, 'the next batch goes after the deadline');
  t.equal(drops.counts.logs.export_timeout, 2);
  const throwing = new RecordBatchQueue<number>(
    {
      export() {
        throw new Error('transport broken');
      },
      shutdown: async () => {},
    },
    limits(10, 2),
    drops.counter('logs'),
  );
  throwing.add(1);
  throwing.add(2);
  await throwing.shutdown();
  t.equal(drops.counts.logs.export_failed, 2);
  await exporter.answerAll();
  await queue.shutdown();
});

t.test('the warning line: at once for the first drop, then at most one per interval, with what was dropped since', async (t) => {
  const lines: { fields: Record<string, unknown>; msg: string; at: number }[] = [];
  const drops = new TelemetryDrops((fields, msg) => lines.push({ fields: fields as Record<string, unknown>, msg, at: Date.now() }), 300);
  const logs = drops.counter('logs');
  const traces = drops.counter('traces');
  logs.add('queue_full', 1);
  logs.add('queue_full', 1);
  await sleep(20);
  t.equal(lines.length, 1, 'the first drop is told at once');
  t.same(lines[0]?.fields, { dropped: { logs: { queue_full: 2 } } });
  t.match(lines[0]?.msg, /dropped 2 log records and 0 spans since start/);
  for (let i = 0; i < 1000; i++) logs.add('queue_full', 1);
  traces.add('export_timeout', 512);
  await sleep(100);
  t.equal(lines.length, 1, 'not again before the interval');
  for (let i = 0; i < 200 && lines.length < 2; i++) await sleep(10);
  t.equal(lines.length, 2);
  t.match(lines[1]?.fields, { dropped: { logs: { queue_full: 1000 }, traces: { export_timeout: 512 } } });
  t.ok((lines[1]?.at ?? 0) - (lines[0]?.at ?? 0) >= 290, 'one line per interval at most');
  drops.report();
  t.equal(lines.length, 2, 'nothing new, no line');
  t.same(drops.counts.logs.queue_full, 1002, 'the counts themselves are totals');
});
