#!/usr/bin/env node
// Tracing's parts in a loop, each against what it replaced (docs/observability.md):
// - a request's two spans (server, upstream) started, given their attributes and ended into a
//   batch processor: the SDK's tracer and Span objects, and Warden's RequestSpan records;
// - OTLP/protobuf encoding of a 512-span batch of request spans: otlp-transformer's
//   ProtobufTraceSerializer, and Warden's encoder (src/telemetry/otlp-span-encoder.ts).
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

const { values: opts } = parseArgs({ options: { rounds: { type: 'string', default: '15' } } });
const ROUNDS = Number(opts.rounds);
const resource = resourceFromAttributes({ 'service.name': 'orders', 'service.version': '0.1.0', 'warden.trust_domain': 'example.org' });
const scope = { name: 'warden', version: '0.1.0' };
// Both paths end spans into the same kind of batch processor, whose exporter drops them.
const discard = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {}, forceFlush: async () => {} };
const processor = () => new BatchSpanProcessor(discard, { maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMillis: 1000 });
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
function recordedSpans(i) {
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
  records.onEnd(client.finish(ended));
  span.name = 'POST api';
  span.attributes['http.route'] = 'api';
  span.attributes['http.response.status_code'] = 200;
  records.onEnd(span.finish(ended));
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
const same = Buffer.from(encodeSpans(batch)).equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(batch)));
const result = {
  rounds: ROUNDS,
  request_spans_us: { sdk: spans.a_us, records: spans.b_us, ratio: spans.ratio },
  encode_us_per_span: { otlp_transformer: encode.a_us, warden: encode.b_us, ratio: encode.ratio, same_bytes: same },
};
console.log(`a request's two spans: SDK ${spans.a_us} µs, records ${spans.b_us} µs (${spans.ratio}×)`);
console.log(
  `OTLP/protobuf per span: otlp-transformer ${encode.a_us} µs, Warden's encoder ${encode.b_us} µs (${encode.ratio}×), same bytes: ${same}`,
);
console.log(JSON.stringify(result));
process.exit(same ? 0 : 1);
