/**
 * Fuzz: Warden's OTLP/protobuf span encoder (src/telemetry/otlp-span-encoder.ts) against the
 * reference, `@opentelemetry/otlp-transformer`'s ProtobufTraceSerializer: for any batch of finished
 * spans (several resources and scopes, every attribute value type, Unicode and long strings that
 * need multi-byte lengths, events, links, trace state, remote parents, statuses), the two must
 * produce the same bytes. Batches as the sidecar queues its request spans (span-batch-queue.ts:
 * each span encoded as it ends into the batch, resource and scope written in front when it is
 * sealed) must give the same bytes too.
 */
import t from 'tap';
import fc from 'fast-check';
import { SpanKind, TraceFlags, type Attributes, type HrTime, type Link, type SpanContext } from '@opentelemetry/api';
import { hrTime, TraceState } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { encodeSpans, writeSpan } from '../../src/telemetry/otlp-span-encoder.js';
import { hrTimeOf, RequestSpan } from '../../src/telemetry/request-span.js';
import { SpanBatchQueue, type SpanBatch } from '../../src/telemetry/span-batch-queue.js';
import { collectingExporter } from '../support/span-batch-exporter.js';
import { fuzz, fuzzAsync } from './fuzz-budget.js';

const hex = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));
const text = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', minLength: 100, maxLength: 400 }),
  fc.constantFrom('http.request.method', 'url.path', 'warden.request.id', ''),
  // Lone surrogates: both encoders must write U+FFFD for them.
  fc.constantFrom('\ud800', 'a\udc00b', 'x'.repeat(70) + '\ud83d', '\ud83d\ude00'),
);
const number = fc.oneof(
  fc.integer(),
  fc.integer({ min: -(2 ** 53), max: 2 ** 53 }),
  fc.double(),
  fc.constantFrom(0, -1, 2 ** 32, 2 ** 40 + 7, -(2 ** 63), 2 ** 63, 2 ** 62, 1e300, -0, NaN, Infinity),
);
const scalar = fc.oneof(text, number, fc.boolean());
const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(fc.oneof(scalar, fc.constant(null), fc.constant(undefined)), { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.dictionary(text, scalar, { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom(undefined, null) },
);
const attributes = fc.dictionary(text, value, { maxKeys: 12 }) as fc.Arbitrary<Attributes>;
// Times from 1970 to past 2100, nanoseconds near both ends of their range.
const time: fc.Arbitrary<HrTime> = fc.tuple(
  fc.integer({ min: 0, max: 2 ** 32 }),
  fc.oneof(fc.integer({ min: 0, max: 999_999_999 }), fc.constantFrom(0, 999_999_999)),
);
const traceState = fc.option(
  fc
    .array(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/), fc.stringMatching(/^[!-+\--<>-~]{1,12}$/)), { maxLength: 3 })
    .map((pairs) => new TraceState(pairs.map(([k, v]) => `${k}=${v}`).join(','))),
  { nil: undefined },
);
const spanContext: fc.Arbitrary<SpanContext> = fc.record({
  traceId: hex(16),
  spanId: hex(8),
  traceFlags: fc.constantFrom(TraceFlags.SAMPLED, TraceFlags.NONE, 0xff),
  isRemote: fc.option(fc.boolean(), { nil: undefined }),
  traceState,
});
const link: fc.Arbitrary<Link> = fc.record({
  context: spanContext,
  attributes: fc.option(attributes, { nil: undefined }),
  droppedAttributesCount: fc.option(fc.nat(300), { nil: undefined }),
});

const resources: Resource[] = [
  resourceFromAttributes({ 'service.name': 'orders', 'service.version': '0.1.0', 'warden.trust_domain': 'example.org' }),
  resourceFromAttributes({ 'service.name': 'ünïcödé-service', pid: 42, ratio: 0.5, debug: true }),
  resourceFromAttributes({}),
  resourceFromAttributes({ 'service.name': 'with-schema' }, { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' }),
];
const scopes = [
  { name: 'warden', version: '0.1.0' },
  { name: 'warden' },
  { name: 'other', version: '2', schemaUrl: 'https://opentelemetry.io/schemas/1.28.0' },
];

const span: fc.Arbitrary<ReadableSpan> = fc
  .record({
    name: text,
    kind: fc.constantFrom(SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER),
    context: spanContext,
    parent: fc.option(spanContext, { nil: undefined }),
    startTime: time,
    endTime: time,
    attributes,
    events: fc.array(
      fc.record({
        name: text,
        time,
        attributes: fc.option(attributes, { nil: undefined }),
        droppedAttributesCount: fc.option(fc.nat(5), { nil: undefined }),
      }),
      { maxLength: 3 },
    ),
    links: fc.array(link, { maxLength: 2 }),
    status: fc.record({ code: fc.constantFrom(0, 1, 2), message: fc.option(text, { nil: undefined }) }),
    dropped: fc.tuple(fc.nat(1000), fc.nat(200), fc.nat(3)),
    resource: fc.nat(resources.length - 1),
    scope: fc.nat(scopes.length - 1),
  })
  .map((s) => ({
    name: s.name,
    kind: s.kind,
    spanContext: () => s.context,
    parentSpanContext: s.parent,
    startTime: s.startTime,
    endTime: s.endTime,
    duration: [0, 0] as HrTime,
    ended: true,
    attributes: s.attributes,
    events: s.events,
    links: s.links,
    status: s.status,
    droppedAttributesCount: s.dropped[0],
    droppedEventsCount: s.dropped[1],
    droppedLinksCount: s.dropped[2],
    resource: resources[s.resource] as Resource,
    instrumentationScope: scopes[s.scope] as (typeof scopes)[number],
  }));

const reference = (spans: ReadableSpan[]) => Buffer.from(ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array);

const expectBytes = (kind: string, ours: Buffer, expected: Buffer) => {
  if (ours.equals(expected)) return;
  const at = ours.findIndex((b, i) => b !== expected[i]);
  throw new Error(`${kind}: bytes differ at ${at} of ${expected.length} (ours ${ours.length})`);
};

const same = (spans: ReadableSpan[]) => expectBytes('encodeSpans', Buffer.from(encodeSpans(spans)), reference(spans));

const NO_SPANS_ORIGIN = { resource: resourceFromAttributes({}), instrumentationScope: { name: 'warden' } };

/** The batches a queue sends for `spans`, which must share one resource and scope. */
const queued = async (spans: ReadableSpan[], maxExportBatchSize: number): Promise<SpanBatch[]> => {
  const exporter = collectingExporter();
  const { resource, instrumentationScope: scope } = spans[0] ?? NO_SPANS_ORIGIN;
  const limits = {
    maxQueueSize: 1_000_000,
    maxExportBatchSize,
    scheduledDelayMillis: 60_000,
    maxQueueBytes: Infinity,
    maxExportBatchBytes: Infinity,
    exportTimeoutMillis: 60_000,
  };
  const queue = new SpanBatchQueue(exporter, resource, scope, limits, { add() {} });
  for (const s of spans) queue.add(1, (w) => writeSpan(w, s));
  await queue.shutdown();
  return exporter.sent;
};

/** Queued in batches of `size`: each batch the bytes the reference makes of its spans. */
const sameQueued = async (spans: ReadableSpan[], size: number) => {
  const sent = await queued(spans, size);
  const expected = Math.ceil(spans.length / size);
  if (sent.length !== expected) throw new Error(`${sent.length} batches sent, expected ${expected}`);
  sent.forEach((batch, i) => {
    const part = spans.slice(i * size, (i + 1) * size);
    if (batch.length !== part.length) throw new Error(`batch ${i} says ${batch.length} spans, holds ${part.length}`);
    expectBytes(`queued batch ${i}`, Buffer.from(batch.bytes), reference(part));
  });
};

t.test('the same bytes as the reference serializer, for any batch of spans', async (t) => {
  fuzz(t, 'otlp.spans', [fc.array(span, { maxLength: 12 })], same, { runs: 300 });
});

t.test('queued as the sidecar queues request spans: each batch the bytes of the reference', async (t) => {
  // One resource and scope per queue (every request span has Warden's), any of them; batches of 1 to 5 spans.
  const oneOrigin = fc
    .tuple(fc.array(span, { maxLength: 12 }), fc.nat(resources.length - 1), fc.nat(scopes.length - 1))
    .map(([spans, r, sc]) =>
      spans.map((s) => ({ ...s, resource: resources[r] as Resource, instrumentationScope: scopes[sc] as (typeof scopes)[number] })),
    );
  await fuzzAsync(t, 'otlp.queued-batches', [oneOrigin, fc.integer({ min: 1, max: 5 })], sameQueued, { runs: 200 });
});

t.test('a batch of request spans as the sidecar records them, up to the batch size', async (t) => {
  const resource = resources[0] as Resource;
  const scope = { name: 'warden', version: '0.1.0' };
  const spans: ReadableSpan[] = [];
  for (let i = 0; i < 512; i++) {
    const server: SpanContext = { traceId: 'a'.repeat(31) + (i % 10), spanId: 'b'.repeat(15) + (i % 10), traceFlags: TraceFlags.SAMPLED };
    const s = new RequestSpan(
      'GET',
      SpanKind.SERVER,
      server,
      undefined,
      performance.now(),
      { 'http.request.method': 'GET', 'url.path': `/orders/${i}` },
      resource,
      scope,
    );
    if (i % 7 === 0) s.addEvent('warden.input.sqli', { 'warden.rule': 'sqli-libinjection', 'warden.detail': '/query/q/0' });
    s.attributes['http.response.status_code'] = 200 + (i % 300);
    spans.push(s.finish(performance.now() + i));
  }
  same(spans);
  await sameQueued(spans, 512);
  t.pass('512 request spans encode as the reference does, by encodeSpans and queued (both buffers grow past 64 KiB)');
  // Spans larger than a batch's first buffer grow it mid-span: those before keep their bytes.
  const big = spans.slice(0, 40).map((s, i) => {
    if (i % 3 === 0) s.attributes['warden.detail'] = 'x'.repeat(9000 + i * 700);
    return s;
  });
  same(big);
  await sameQueued(big, 40);
  await sameQueued(big, 13);
  t.pass("spans of 9 KB and more between small ones keep their own and their neighbours' bytes, in one batch or several");
  same([]);
  if ((await queued([], 512)).length !== 0) throw new Error('an empty queue sent a batch');
  t.pass('an empty batch too; an empty queue sends none');
});

// Any time since the process began (up to ~30 years), with fractions that round across a second.
const performanceNow = fc.oneof(
  fc.double({ min: 0, max: 1e12, noNaN: true }),
  fc.integer({ min: 0, max: 1e9 }).map((ms) => ms + 0.9999999),
  fc.integer({ min: 0, max: 1e9 }).map((s) => s * 1000 + 999.9999996),
);

t.test('request spans: a performance.now() value is the time core makes of it', async (t) => {
  fuzz(t, 'otlp.request-span-hrtime', [performanceNow], (now) => {
    const ours = hrTimeOf(now);
    const reference = hrTime(now);
    if (ours[0] !== reference[0] || ours[1] !== reference[1])
      throw new Error(`${now}: [${ours.join(', ')}] against [${reference.join(', ')}]`);
  });
});

t.test('request spans: their times, read from performance.now() values, as the reference reads them', async (t) => {
  const resource = resources[0] as Resource;
  const scope = { name: 'warden', version: '0.1.0' };
  const context: SpanContext = { traceId: 'c'.repeat(32), spanId: 'd'.repeat(16), traceFlags: TraceFlags.SAMPLED };
  const now = performanceNow;
  fuzz(
    t,
    'otlp.request-span-times',
    [now, now],
    (start, end) => same([new RequestSpan('GET', SpanKind.SERVER, context, undefined, start, {}, resource, scope).finish(end)]),
    { runs: 500 },
  );
});
