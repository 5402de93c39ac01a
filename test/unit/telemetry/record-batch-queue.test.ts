/**
 * The export queue of log records and of the SDK's spans (src/telemetry/record-batch-queue.ts):
 * the SDK's batch limits, every record dropped counted with its reason; the flood folding of log
 * records past half full (log-fold.ts); and the throttled warning of telemetry-drops.ts. Before,
 * the SDK's processors dropped a full queue's records into a no-op meter: uncounted.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { LogFold } from '../../../src/telemetry/log-fold.js';
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

/** Flushes the queue, answering each export. */
async function flushed<T>(queue: RecordBatchQueue<T>, exporter: ReturnType<typeof heldExporter<T>>) {
  const flush = queue.forceFlush();
  await exporter.answerAll();
  await flush;
}

const limits = (maxQueueSize: number, maxExportBatchSize: number, exportTimeoutMillis = 60_000) => ({
  maxQueueSize,
  maxExportBatchSize,
  scheduledDelayMillis: 60_000,
  exportTimeoutMillis,
});

/** What the security events' log records carry that the queue reads: the event name and the client address. */
function record(eventName: string, client: string | undefined, i = 0): ReadableLogRecord {
  return {
    eventName,
    attributes: { ...(client === undefined ? {} : { 'client.address': client }), i },
    hrTime: [0, 0],
    hrTimeObserved: [0, 0],
    droppedAttributesCount: 0,
  } as unknown as ReadableLogRecord;
}

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
  t.same(
    drops.counts.logs,
    { queue_full: 0, export_failed: 0, export_timeout: 0, breaker_open: 0, collector_rejected: 0 },
    'counted under its signal',
  );
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

t.test("past half full, one caller's flood of one event folds into one record; other events keep their room", async (t) => {
  const drops = new TelemetryDrops();
  const exporter = heldExporter<ReadableLogRecord>();
  const queue = new RecordBatchQueue<ReadableLogRecord>(exporter, limits(8, 4), drops.counter('logs'), new LogFold());
  for (let i = 0; i < 4; i++) queue.add(record('warden.access.denied', '192.0.2.1', i)); // one batch, never answered yet
  for (let i = 4; i < 8; i++) queue.add(record('warden.access.denied', '192.0.2.1', i)); // half the queue
  for (let i = 8; i < 1008; i++) queue.add(record('warden.access.denied', '192.0.2.1', i)); // the flood, past half
  queue.add(record('warden.input.sqli', '192.0.2.1')); // another event of the same caller
  queue.add(record('warden.access.denied', '198.51.100.9')); // the same event, another caller
  queue.add(record('warden.mesh.rotated', undefined)); // one without a client
  queue.add(record('warden.mesh.rotated', undefined)); // folded into the one before
  t.equal(queue.length, 8, 'the queue holds half the flood, one record for the rest, and the others');
  t.equal(drops.counts.logs.queue_full, 0, 'nothing dropped');
  await flushed(queue, exporter);
  const exported = exporter.sent.flat();
  const folded = exported.filter((r) => r.attributes['warden.folded'] !== undefined);
  t.same(
    folded.map((r) => [r.eventName, r.attributes['client.address'], r.attributes.i, r.attributes['warden.folded']]),
    [
      ['warden.access.denied', '192.0.2.1', 8, 999],
      ['warden.mesh.rotated', undefined, 0, 1],
    ],
    'the first of the flood past half carries the count of those folded into it',
  );
  const events = exported.reduce((n, r) => n + 1 + Number(r.attributes['warden.folded'] ?? 0), 0);
  t.equal(events, 1012, 'every event is exported or counted in one that is');
  t.ok(
    exported.some((r) => r.eventName === 'warden.input.sqli') && exported.some((r) => r.attributes['client.address'] === '198.51.100.9'),
    'the other events are exported: the flood did not take their room',
  );

  // Once it has left, the next record of the flood past half is held again (no count carried over).
  for (let i = 0; i < 4; i++) queue.add(record('warden.access.denied', '192.0.2.1', i));
  for (let i = 0; i < 4; i++) queue.add(record('warden.access.denied', '192.0.2.1', i));
  queue.add(record('warden.access.denied', '192.0.2.1', 42));
  queue.add(record('warden.access.denied', '192.0.2.1', 43));
  await flushed(queue, exporter);
  const last = exporter.sent.flat().slice(exported.length);
  t.same(
    last.filter((r) => r.attributes['warden.folded'] !== undefined).map((r) => [r.attributes.i, r.attributes['warden.folded']]),
    [[42, 1]],
  );
});

t.test('many callers at once are not folded: the queue fills and the rest is dropped and counted', async (t) => {
  const drops = new TelemetryDrops();
  const exporter = heldExporter<ReadableLogRecord>();
  const queue = new RecordBatchQueue<ReadableLogRecord>(exporter, limits(8, 4), drops.counter('logs'), new LogFold());
  for (let i = 0; i < 20; i++) queue.add(record('warden.access.denied', `10.0.0.${i}`));
  t.equal(exporter.sent.flat().length + queue.length + drops.counts.logs.queue_full, 20);
  t.equal(drops.counts.logs.queue_full, 8);
  await exporter.answerAll();
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
