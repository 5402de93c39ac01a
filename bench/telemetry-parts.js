#!/usr/bin/env node
// Tracing's parts in a loop, each against what it replaced (docs/observability.md):
// - a request's two spans (server, upstream) started, given their attributes and ended into a
//   batch processor: the SDK's tracer and Span objects, and Warden's RequestSpan records;
// - OTLP/protobuf encoding of a 512-span batch of request spans: otlp-transformer's
//   ProtobufTraceSerializer, and Warden's encoder (src/telemetry/otlp-span-encoder.ts);
// - a request's two span records ended, queued and encoded for export (the exporters drop the
//   bytes): through the SDK's batch processor with Warden's encoder at export, and encoded as they
//   end into their batch (src/telemetry/span-batch-queue.ts), as the sidecar does.
// Rounds alternate A and B, so a drift of the host's speed cannot favour either. Warm caches: in a
// loaded sidecar each costs more, in the same proportion or so.
// Usage: node bench/telemetry-parts.js [--rounds N]
import { parseArgs } from 'node:util';
import { ROOT_CONTEXT, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, RandomIdGenerator } from '@opentelemetry/sdk-trace-base';
import { encodeSpans } from '../dist/telemetry/otlp-span-encoder.js';
import { RequestSpan } from '../dist/telemetry/request-span.js';
import { SpanBatchQueue } from '../dist/telemetry/span-batch-queue.js';

const { values: opts } = parseArgs({ options: { rounds: { type: 'string', default: '15' } } });
const ROUNDS = Number(opts.rounds);
const resource = resourceFromAttributes({ 'service.name': 'orders', 'service.version': '0.1.0', 'warden.trust_domain': 'example.org' });
const scope = { name: 'warden', version: '0.1.0' };
// Both paths end spans into the same kind of batch processor, whose exporter drops them.
const discard = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {}, forceFlush: async () => {} };
const limits = { maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMillis: 1000 };
const processor = (exporter = discard) => new BatchSpanProcessor(exporter, limits);
const serverAttributes = (i) => ({
  'http.request.method': 'POST',
  'url.path': '/orders',
  'network.protocol.version': '1.1',
  'client.address': '127.0.0.1',
  'warden.request.id': `6f1c0a8e-5b7d-4c1e-9a3f-${String(i).padStart(12, '0')}`,
});

const tracer = new BasicTracerProvider({ resource, spanProcessors: [processor()] }).getTracer('warden', '0.1.0');
function sdkSpans(i) {
  const server = tracer.startSpan('POST', { kind: SpanKind.SERVER, attributes: serverAttributes(i) }, ROOT_CONTEXT);
  const client = tracer.startSpan(
    'upstream',
    { kind: SpanKind.CLIENT, attributes: { 'http.request.method': 'POST' } },
    trace.setSpan(ROOT_CONTEXT, server),
  );
  client.setAttribute('http.response.status_code', 200);
  client.end();
  server.updateName('POST api');
  server.setAttributes({ 'http.route': 'api', 'http.response.status_code': 200 });
  server.end();
}

const records = processor();
const ids = new RandomIdGenerator();
/** A request's two spans as Warden records them, each handed to `end` (by default a batch processor whose exporter drops them). */
function recordedSpans(i, end = (span) => records.onEnd(span)) {
  const started = performance.now();
  const server = { traceId: ids.generateTraceId(), spanId: ids.generateSpanId(), traceFlags: TraceFlags.SAMPLED };
  const span = new RequestSpan('POST', SpanKind.SERVER, server, undefined, started, serverAttributes(i), resource, scope);
  const upstream = { ...server, spanId: ids.generateSpanId() };
  const client = new RequestSpan(
    'upstream',
    SpanKind.CLIENT,
    upstream,
    server,
    performance.now(),
    { 'http.request.method': 'POST' },
    resource,
    scope,
  );
  client.attributes['http.response.status_code'] = 200;
  const ended = performance.now();
  end(client.finish(ended));
  span.name = 'POST api';
  span.attributes['http.route'] = 'api';
  span.attributes['http.response.status_code'] = 200;
  end(span.finish(ended));
}

const batch = [];
for (let i = 0; batch.length < 512; i++) {
  const server = { traceId: ids.generateTraceId(), spanId: ids.generateSpanId(), traceFlags: TraceFlags.SAMPLED };
  const attributes = { ...serverAttributes(i), 'http.route': 'api', 'http.response.status_code': 200 };
  const s = new RequestSpan('POST api', SpanKind.SERVER, server, undefined, performance.now(), attributes, resource, scope);
  const c = new RequestSpan(
    'upstream',
    SpanKind.CLIENT,
    { ...server, spanId: ids.generateSpanId() },
    server,
    performance.now(),
    {
      'http.request.method': 'POST',
      'http.response.status_code': 200,
    },
    resource,
    scope,
  );
  batch.push(c.finish(performance.now() + 1), s.finish(performance.now() + 1));
}

/** µs per call of each of `a` and `b` over rounds that alternate them (a yield between rounds lets the processors flush). */
async function alternate(a, b, perRound, unitsPerCall = 1) {
  const time = (fn) => {
    const started = performance.now();
    for (let i = 0; i < perRound; i++) fn(i);
    return ((performance.now() - started) * 1000) / (perRound * unitsPerCall);
  };
  for (let i = 0; i < perRound; i++) (a(i), b(i));
  const ta = [];
  const tb = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) (ta.push(time(a)), tb.push(time(b)));
    else (tb.push(time(b)), ta.push(time(a)));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const r2 = (x) => Math.round(x * 100) / 100;
  return { a_us: r2(median(ta)), b_us: r2(median(tb)), ratio: r2(median(tb) / median(ta)) };
}

const spans = await alternate(sdkSpans, recordedSpans, 500);
const encode = await alternate(
  () => ProtobufTraceSerializer.serializeRequest(batch),
  () => encodeSpans(batch),
  20,
  batch.length,
);
// Exported: through the SDK's processor, encoded at export; through the queue, already encoded.
// Timed with the flush that exports what a round queued, so that each pays for every span it took
// (the processor exports half a round's spans within it and the rest on its timer).
// Both count what they export: a span dropped for a full queue would be a span not paid for.
const exportedSpans = { processor: 0, queue: 0 };
const encodingAtExport = processor({
  ...discard,
  export: (spans, done) => {
    encodeSpans(spans);
    exportedSpans.processor += spans.length;
    done({ code: 0 });
  },
});
const queueExporter = {
  export: (batch, done) => {
    exportedSpans.queue += batch.length;
    done({ code: 0 });
  },
  shutdown: async () => {},
};
const queue = new SpanBatchQueue(queueExporter, resource, scope, limits, { dropped: 0 });
async function exportedRound(end, flush, requests) {
  const started = performance.now();
  for (let i = 0; i < requests; i++) recordedSpans(i, end);
  await flush();
  return ((performance.now() - started) * 1000) / requests;
}
const viaProcessor = () =>
  exportedRound(
    (span) => encodingAtExport.onEnd(span),
    () => encodingAtExport.forceFlush(),
    500,
  );
const viaQueue = () =>
  exportedRound(
    (span) => queue.add(span),
    () => queue.forceFlush(),
    500,
  );
const tProcessor = [];
const tQueue = [];
for (let r = -1; r < ROUNDS; r++) {
  const [first, second] = r % 2 === 0 ? [viaProcessor, viaQueue] : [viaQueue, viaProcessor];
  const a = await first();
  const b = await second();
  if (r < 0) continue; // warm-up
  (r % 2 === 0 ? tProcessor : tQueue).push(a);
  (r % 2 === 0 ? tQueue : tProcessor).push(b);
}
const medianOf = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const round2 = (x) => Math.round(x * 100) / 100;
const allExported = exportedSpans.processor === exportedSpans.queue && exportedSpans.queue === 2 * 500 * (ROUNDS + 1);
const exported = { a_us: round2(medianOf(tProcessor)), b_us: round2(medianOf(tQueue)) };
exported.ratio = round2(exported.b_us / exported.a_us);
const same = Buffer.from(encodeSpans(batch)).equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(batch)));
const result = {
  rounds: ROUNDS,
  request_spans_us: { sdk: spans.a_us, records: spans.b_us, ratio: spans.ratio },
  encode_us_per_span: { otlp_transformer: encode.a_us, warden: encode.b_us, ratio: encode.ratio, same_bytes: same },
  request_spans_exported_us: {
    batch_processor: exported.a_us,
    batch_queue: exported.b_us,
    ratio: exported.ratio,
    every_span_exported: allExported,
  },
};
console.log(`a request's two spans: SDK ${spans.a_us} µs, records ${spans.b_us} µs (${spans.ratio}×)`);
console.log(
  `OTLP/protobuf per span: otlp-transformer ${encode.a_us} µs, Warden's encoder ${encode.b_us} µs (${encode.ratio}×), same bytes: ${same}`,
);
console.log(
  `a request's two spans recorded and queued for export: batch processor ${exported.a_us} µs, encoded into their batch ${exported.b_us} µs (${exported.ratio}×), every span exported: ${allExported}`,
);
console.log(JSON.stringify(result));
process.exit(same && allExported ? 0 : 1);
