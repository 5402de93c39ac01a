/**
 * Fuzz: a request's spans written straight from its trace (src/telemetry/otlp-request-encoder.ts)
 * against the RequestSpan records `requestSpansOf` makes of the same request, encoded by the
 * general encoder (itself checked against otlp-transformer's serializer in otlp-span-encoder.test)
 * and by that reference serializer: for any request (Unicode and long methods, paths, routes and
 * ids, a remote parent or none, trace state, flags, events and a count of dropped ones, a
 * refusal's outcome, any status, forwarded or not), the same bytes; and queued as the sidecar
 * queues them, batches that never split a request or exceed their size, in spans or in bytes
 * (but for their last request).
 */
import t from 'tap';
import fc from 'fast-check';
import { ROOT_CONTEXT, TraceFlags, type SpanContext } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { requestSpanCount, writeRequestSpans } from '../../src/telemetry/otlp-request-encoder.js';
import { Writer, writeSpan } from '../../src/telemetry/otlp-span-encoder.js';
import { RequestTrace, requestSpansOf, type TracedRequest } from '../../src/telemetry/request-trace.js';
import { SpanBatchQueue, type SpanBatch } from '../../src/telemetry/span-batch-queue.js';
import { collectingExporter } from '../support/span-batch-exporter.js';
import { fuzz, fuzzAsync } from './fuzz-budget.js';

const resource = resourceFromAttributes({ 'service.name': 'orders', 'service.version': '0.1.0' });
const scope = { name: 'warden', version: '0.1.0' };

const hex = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));
const text = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', minLength: 60, maxLength: 300 }),
  fc.constantFrom('', 'POST', '/orders/42', 'createOrder', '127.0.0.1', '\ud800', 'x'.repeat(120)),
);
const context = (isRemote: fc.Arbitrary<boolean | undefined>): fc.Arbitrary<SpanContext> =>
  fc
    .record({
      traceId: hex(16),
      spanId: hex(8),
      traceFlags: fc.constantFrom(TraceFlags.SAMPLED, TraceFlags.NONE, 0xff),
      isRemote,
      state: fc.option(fc.constantFrom('vendor=abc', 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE'), { nil: undefined }),
    })
    .map(({ state, isRemote, ...c }) => ({
      ...c,
      ...(isRemote === undefined ? {} : { isRemote }),
      ...(state ? { traceState: new TraceState(state) } : {}),
    }));
const now = fc.double({ min: 0, max: 1e10, noNaN: true });
const event = fc.record({
  name: text,
  time: fc.tuple(fc.integer({ min: 0, max: 2 ** 32 }), fc.integer({ min: 0, max: 999_999_999 })),
  attributes: fc.dictionary(text, fc.oneof(text, fc.integer(), fc.boolean()), { maxKeys: 4 }),
  droppedAttributesCount: fc.constant(0),
});

const ended = fc
  .record({
    server: context(fc.constant(undefined)),
    remote: fc.option(context(fc.option(fc.boolean(), { nil: undefined })), { nil: undefined }),
    clientSpanId: fc.option(hex(8), { nil: undefined }),
    times: fc.tuple(now, now, now),
    events: fc.option(fc.array(event, { minLength: 1, maxLength: 3 }), { nil: undefined }),
    droppedEvents: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 ** 31 - 1 })),
    outcome: fc.option(text, { nil: undefined }),
    outcomeCode: fc.option(text, { nil: undefined }),
    method: text,
    path: text,
    protocol: fc.constantFrom('1.1', '2'),
    clientAddress: text,
    requestId: text,
    spiffeId: fc.option(text, { nil: undefined }),
    route: text,
    status: fc.oneof(fc.integer({ min: 100, max: 599 }), fc.constantFrom(0, 200, 500, 503)),
  })
  .map((r) => {
    const trace = new RequestTrace(ROOT_CONTEXT, r.server, r.remote, true);
    trace.clientSpanId = r.clientSpanId;
    [trace.clientStartedAt, trace.endedAt] = [r.times[1], r.times[2]];
    trace.events = r.events;
    trace.droppedEvents = r.droppedEvents;
    trace.outcome = r.outcome;
    trace.outcomeCode = r.outcomeCode;
    const request: TracedRequest = {
      requestId: r.requestId,
      startedAt: r.times[0],
      protocol: r.protocol,
      method: r.method,
      path: r.path,
      clientAddress: r.clientAddress,
      headers: {},
      upstreamHeaders: {},
      peer: r.spiffeId === undefined ? { verified: false } : { verified: true, spiffeId: r.spiffeId },
      route: { id: r.route },
      traceContext: ROOT_CONTEXT,
    };
    return { trace, request, status: r.status };
  });
type Ended = typeof ended extends fc.Arbitrary<infer T> ? T : never;

const direct = ({ trace, request, status }: Ended): Buffer => {
  const w = new Writer(16);
  writeRequestSpans(w, trace, request, status);
  return Buffer.from(w.buf.subarray(0, w.pos));
};
const viaRecords = ({ trace, request, status }: Ended): Buffer => {
  const w = new Writer(16);
  for (const span of requestSpansOf(trace, request, status, resource, scope)) writeSpan(w, span);
  return Buffer.from(w.buf.subarray(0, w.pos));
};

const differ = (what: string, ours: Buffer, expected: Buffer) => {
  if (ours.equals(expected)) return;
  const at = ours.findIndex((b, i) => b !== expected[i]);
  throw new Error(`${what}: bytes differ at ${at} of ${expected.length} (ours ${ours.length})`);
};

t.test('written from the trace: the bytes of its span records', async (t) => {
  fuzz(t, 'otlp.request-spans', [ended], (e) => differ('writeRequestSpans', direct(e), viaRecords(e)), { runs: 400 });
});

/** The batches a queue sends for `requests`, and the span records of each request. */
async function queued(requests: Ended[], maxExportBatchSize: number, maxExportBatchBytes: number): Promise<SpanBatch[]> {
  const exporter = collectingExporter();
  const limits = {
    maxQueueSize: 1_000_000,
    maxExportBatchSize,
    scheduledDelayMillis: 60_000,
    maxQueueBytes: Infinity,
    maxExportBatchBytes,
    exportTimeoutMillis: 60_000,
  };
  const queue = new SpanBatchQueue(exporter, resource, scope, limits, { add() {} });
  for (const r of requests) queue.add(requestSpanCount(r.trace), (w) => writeRequestSpans(w, r.trace, r.request, r.status));
  await queue.shutdown();
  return exporter.sent;
}

t.test(
  'queued: each batch the reference bytes of whole requests, never more spans than its size, nor bytes past its bound but for its last request',
  async (t) => {
    await fuzzAsync(
      t,
      'otlp.request-batches',
      [
        fc.array(ended, { maxLength: 10 }),
        fc.integer({ min: 2, max: 5 }),
        fc.oneof(fc.constant(Infinity), fc.integer({ min: 1, max: 4000 })),
      ],
      async (requests, size, bytes) => {
        const sent = await queued(requests, size, bytes);
        let next = 0;
        for (const [i, batch] of sent.entries()) {
          if (batch.length > size) throw new Error(`batch ${i} holds ${batch.length} spans, more than ${size}`);
          const spans = [];
          // The bytes of the batch's requests before its last: under the bound, or the batch would have been sent without the last.
          let before = 0;
          let last = 0;
          while (next < requests.length && spans.length < batch.length) {
            const r = requests[next++] as Ended;
            spans.push(...requestSpansOf(r.trace, r.request, r.status, resource, scope));
            before += last;
            last = direct(r).length;
          }
          if (before >= bytes) throw new Error(`batch ${i} went on past ${bytes} bytes (${before} before its last request)`);
          if (spans.length !== batch.length) throw new Error(`batch ${i} says ${batch.length} spans, its requests have ${spans.length}`);
          differ(`batch ${i}`, Buffer.from(batch.bytes), Buffer.from(ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array));
        }
        if (next !== requests.length) throw new Error(`${requests.length - next} requests were not sent`);
      },
      { runs: 150 },
    );
  },
);
