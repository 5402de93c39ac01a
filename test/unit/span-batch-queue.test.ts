/**
 * The request spans' export queue (src/telemetry/span-batch-queue.ts): its limits are those of the
 * SDK's batch processor. Batches go out when full or after the delay, one export at a time, in
 * order; a full queue drops and counts; shutdown sends what is left. The bytes of every batch are
 * checked against the reference serializer in test/fuzz/otlp-span-encoder, the HTTP export in
 * test/integration/otel.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpanKind, TraceFlags } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { RequestSpan } from '../../src/telemetry/request-span.js';
import { writeSpan, type Writer } from '../../src/telemetry/otlp-span-encoder.js';
import { SpanBatchQueue, type SpanBatch } from '../../src/telemetry/span-batch-queue.js';

const resource = resourceFromAttributes({ 'service.name': 'orders' });
const scope = { name: 'warden', version: '0.1.0' };

/** One span for the queue: written as `writeSpan` writes it. */
const writing = (s: RequestSpan) => (w: Writer) => writeSpan(w, s);

function span(i: number): RequestSpan {
  const context = { traceId: 'a'.repeat(32), spanId: i.toString(16).padStart(16, '0'), traceFlags: TraceFlags.SAMPLED };
  return new RequestSpan('GET', SpanKind.SERVER, context, undefined, performance.now(), { 'url.path': `/${i}` }, resource, scope).finish(
    performance.now(),
  );
}

/** An exporter that answers only when told to, so the test sees what waits. */
function heldExporter() {
  const sent: SpanBatch[] = [];
  const pending: ((r: ExportResult) => void)[] = [];
  let shutdowns = 0;
  return {
    sent,
    pending,
    get shutdowns() {
      return shutdowns;
    },
    export(batch: SpanBatch, done: (r: ExportResult) => void) {
      sent.push(batch);
      pending.push(done);
    },
    async shutdown() {
      shutdowns++;
    },
    /** Answers the oldest export and lets the queue send its next batch. */
    async answer() {
      pending.shift()?.({ code: 0 });
      await sleep(1);
    },
  };
}

/** A queue of request spans with these limits, in front of a held exporter. */
function queueWith(maxQueueSize: number, maxExportBatchSize: number, scheduledDelayMillis = 60_000) {
  const exporter = heldExporter();
  const dropped = { dropped: 0 };
  const queue = new SpanBatchQueue(exporter, resource, scope, { maxQueueSize, maxExportBatchSize, scheduledDelayMillis }, dropped);
  return { exporter, dropped, queue };
}

t.test('full batches go out at once, one export at a time, in order', async (t) => {
  const { exporter, dropped, queue } = queueWith(100, 3);
  for (let i = 0; i < 9; i++) queue.add(1, writing(span(i)));
  t.equal(exporter.sent.length, 1, 'the first full batch is sent; the next two wait for it');
  await exporter.answer();
  t.equal(exporter.sent.length, 2, 'the second goes once the first is answered');
  await exporter.answer();
  await exporter.answer();
  t.same(
    exporter.sent.map((b) => b.length),
    [3, 3, 3],
  );
  const idsIn = (b: SpanBatch) => Buffer.from(b.bytes).toString('hex');
  // Span ids are written as bytes: span 3 (the first of batch 2) is ...0003.
  t.ok(idsIn(exporter.sent[1] as SpanBatch).includes('0000000000000003'), 'batches keep the order spans ended in');
  t.notOk(idsIn(exporter.sent[0] as SpanBatch).includes('0000000000000003'));
  t.equal(dropped.dropped, 0);
  await queue.shutdown();
});

t.test('a full queue drops new spans and counts them; room comes back as batches are sent', async (t) => {
  const { exporter, dropped, queue } = queueWith(4, 2);
  // One batch in export, then four spans wait (two sealed, two in the open batch): the queue is full.
  for (let i = 0; i < 6; i++) queue.add(1, writing(span(i)));
  t.equal(dropped.dropped, 0);
  queue.add(1, writing(span(6)));
  queue.add(1, writing(span(7)));
  t.equal(dropped.dropped, 2, 'spans beyond maxQueueSize waiting are dropped and counted');
  await exporter.answer();
  queue.add(1, writing(span(8)));
  t.equal(dropped.dropped, 2, 'a sent batch makes room');
  await exporter.answer();
  await exporter.answer();
  const flushed = queue.shutdown();
  await sleep(1);
  await exporter.answer();
  await flushed;
  t.same(
    exporter.sent.map((b) => b.length),
    [2, 2, 2, 1],
    'nothing accepted was lost',
  );
});

t.test('a batch that does not fill goes out after the delay', async (t) => {
  const { exporter, queue } = queueWith(100, 50, 40);
  queue.add(1, writing(span(1)));
  queue.add(1, writing(span(2)));
  await sleep(10);
  t.equal(exporter.sent.length, 0, 'not before the delay');
  await sleep(80);
  t.same(
    exporter.sent.map((b) => b.length),
    [2],
    'after it, with the spans that had ended',
  );
  const small = exporter.sent[0] as SpanBatch;
  t.ok(small.bytes.buffer.byteLength <= 8192, `a small batch holds ${small.bytes.buffer.byteLength} bytes, not its 64 KiB buffer`);
  await exporter.answer();
  queue.add(1, writing(span(3)));
  await sleep(80);
  t.equal(exporter.sent.length, 2, 'the next span starts the next delay');
  await exporter.answer();
  await queue.shutdown();
});

t.test('shutdown sends what is left, then shuts the exporter down; later spans are ignored', async (t) => {
  const { exporter, queue } = queueWith(100, 50);
  for (let i = 0; i < 5; i++) queue.add(1, writing(span(i)));
  const done = queue.shutdown();
  await sleep(1);
  t.same(
    exporter.sent.map((b) => b.length),
    [5],
  );
  t.equal(exporter.shutdowns, 0, 'the exporter waits for the last batch');
  await exporter.answer();
  await done;
  t.equal(exporter.shutdowns, 1);
  queue.add(1, writing(span(9)));
  await queue.forceFlush();
  t.equal(exporter.sent.length, 1, 'nothing is queued after shutdown');
});

t.test('an exporter that throws loses its batch, counted, and the queue goes on', async (t) => {
  const sent: number[] = [];
  let calls = 0;
  const exporter = {
    export(batch: SpanBatch, done: (r: ExportResult) => void) {
      if (++calls === 1) throw new Error('transport broken');
      sent.push(batch.length);
      done({ code: 0 });
    },
    shutdown: async () => {},
  };
  const dropped = { dropped: 0 };
  const queue = new SpanBatchQueue(
    exporter,
    resource,
    scope,
    { maxQueueSize: 100, maxExportBatchSize: 2, scheduledDelayMillis: 60_000 },
    dropped,
  );
  for (let i = 0; i < 5; i++) queue.add(1, writing(span(i)));
  await queue.shutdown();
  t.equal(dropped.dropped, 2, 'the batch it threw on is counted as dropped');
  t.same(sent, [2, 1], 'the batches after it are sent');
});

t.test("a batch's buffer follows the last full batch, up and down", async (t) => {
  const { exporter, queue } = queueWith(100, 2);
  t.equal(queue.nextBufferBytes, 64 * 1024, '64 KiB to begin with');
  const huge = (i: number) => {
    const s = span(i);
    s.attributes['warden.detail'] = 'x'.repeat(100_000);
    return s;
  };
  queue.add(1, writing(huge(1)));
  queue.add(1, writing(huge(2)));
  t.ok(queue.nextBufferBytes >= 250_000, `after two spans of 100 kB: ${queue.nextBufferBytes} bytes`);
  await exporter.answer();
  queue.add(1, writing(span(3)));
  queue.add(1, writing(span(4)));
  t.equal(queue.nextBufferBytes, 64 * 1024, 'after a full batch of small spans, back to 64 KiB');
  await exporter.answer();
  await queue.shutdown();
});
