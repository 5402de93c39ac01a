/**
 * A request's security events on its server span (src/telemetry/request-span-events.ts), through
 * the sidecar's own tracing and exporters to a real OTLP receiver: at most 32 span events, the rest
 * counted as the span's dropped events, without the request's fields the span already has; every
 * event still a whole log record. And with a collector that takes trace exports and never answers,
 * the request spans waiting stay bounded in bytes, the rest dropped and counted in
 * `warden.telemetry.dropped`. Before, every event went on the span with the request's path and
 * user agent, and a slow collector let the queue hold gigabytes (docs/adversarial.md, defect 109).
 */
import t, { type Test } from 'tap';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { startOtel, unregisterOtelGlobals } from '../../../src/telemetry/otel.js';
import { createRequestTracing } from '../../../src/telemetry/request-tracing.js';
import type { EventAttributes } from '../../../src/telemetry/events.js';
import type { TracedRequest } from '../../../src/telemetry/request-trace.js';
import { startOtlpReceiver, type OtlpReceiverOptions } from '../../support/otlp-receiver.js';

const PATH = `/upload/${'p'.repeat(1016)}`;
const USER_AGENT = 'U'.repeat(256);

/** The sidecar's tracing, exporting to a real receiver every 100 ms. */
async function traced(t: Test, protocol: 'http/protobuf' | 'http/json', receiverOptions: OtlpReceiverOptions = {}) {
  const receiver = await startOtlpReceiver(receiverOptions);
  const otel = startOtel(
    { endpoint: receiver.url, protocol, export_interval: 100, timeout: 3000 },
    { serviceName: 'orders', version: '0.1.0', attributes: {} },
    {},
  );
  if (otel === undefined) throw new Error('export is on with an endpoint');
  t.teardown(async () => {
    await receiver.close();
    await otel.shutdown();
    unregisterOtelGlobals();
  });
  return { receiver, otel, tracing: createRequestTracing(otel, { ownMetrics: false }) };
}

function request(id: string): TracedRequest {
  return {
    requestId: id,
    startedAt: performance.now(),
    protocol: '1.1',
    method: 'POST',
    path: PATH,
    clientAddress: '192.0.2.7',
    headers: { 'user-agent': USER_AGENT },
    upstreamHeaders: {},
    peer: { verified: false },
    route: { id: 'upload' },
    traceContext: ROOT_CONTEXT,
  };
}

/** What the sidecar's stages give a scanner event (rescue.ts: refusalAttributes), the part's number in its detail. */
const scannerEvent = (ctx: TracedRequest, part: number): EventAttributes => ({
  'client.address': ctx.clientAddress,
  'warden.code': 'ERR_SCANNER_UNAVAILABLE',
  'warden.action': 'detect',
  'http.request.method': ctx.method,
  'url.path': ctx.path,
  'http.route': ctx.route.id,
  'user_agent.original': USER_AGENT,
  'warden.rule': 'malware.unreachable',
  'warden.detail': `part ${part}: ${'connect ECONNREFUSED 127.0.0.1:3310 '.repeat(6)}`,
  'warden.request.id': ctx.requestId,
});

/** One request that raises `events` scanner events, ended with 200. */
function raise(tracing: ReturnType<typeof createRequestTracing>, id: string, events: number): void {
  const ctx = request(id);
  tracing.start(ctx);
  for (let i = 0; i < events; i++) tracing.eventSink('warden.scanner.unavailable', 'error', scannerEvent(ctx, i), ctx.traceContext);
  tracing.end(ctx, 200);
}

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  t.test(`${protocol}: a request raising 100 events has a span of 32 and a count of the rest`, async (t) => {
    const { receiver, tracing } = await traced(t, protocol);
    raise(tracing, 'storm', 100);
    const span = await receiver.until(() => receiver.spans.find((s) => s.attributes['warden.request.id'] === 'storm'));
    t.equal(span.events.length, 32, 'at most 32 span events (before: all 100)');
    t.equal(span.droppedEventsCount, 68, "the rest counted as the span's dropped events");
    t.same(
      span.events.map((e) => String(e.attributes['warden.detail']).split(':')[0]),
      Array.from({ length: 32 }, (_, i) => `part ${i}`),
      'the first ones are kept',
    );
    t.match(span.attributes, {
      'url.path': PATH,
      'http.route': 'upload',
      'client.address': '192.0.2.7',
      'warden.event': 'warden.scanner.unavailable',
    });
    const repeated = span.events.filter((e) =>
      ['url.path', 'http.request.method', 'http.route', 'client.address', 'warden.request.id'].some((k) => k in e.attributes),
    );
    t.equal(repeated.length, 0, "no event repeats the request's fields the span has");
    t.same(
      span.events.map((e) => e.attributes['user_agent.original'] !== undefined),
      [true, ...Array<boolean>(31).fill(false)],
      'the user agent (not on the span) on the first event only',
    );
    t.match(span.events[0]?.attributes, {
      'warden.rule': 'malware.unreachable',
      'warden.action': 'detect',
      'warden.code': 'ERR_SCANNER_UNAVAILABLE',
    });
    const logs = await receiver.until(() => {
      const own = receiver.logs.filter((l) => l.attributes['warden.request.id'] === 'storm');
      return own.length === 100 ? own : undefined;
    });
    t.ok(
      logs.every((l) => l.attributes['url.path'] === PATH && l.attributes['user_agent.original'] === USER_AGENT),
      'every event is still a whole log record',
    );
  });
}

t.test('a collector that never answers trace exports: request spans waiting stay bounded, the rest dropped and counted', async (t) => {
  const { receiver, tracing } = await traced(t, 'http/protobuf', { traces: 'stall' });
  // Settle what starting export allocated, then measure what the spans hold.
  await receiver.until(() => (receiver.exports.metrics > 0 ? true : undefined));
  const before = process.memoryUsage().arrayBuffers;
  // 1 500 requests of 40 events: fewer spans than the queue's 2 048, ~15 MB encoded with 32 events each
  // (before: ~70 MB with all 40 and the path and user agent in each).
  for (let i = 0; i < 1500; i++) raise(tracing, `r${i}`, 40);
  const held = process.memoryUsage().arrayBuffers - before;
  t.ok(
    held < 24 * 1024 * 1024,
    `${(held / 1048576).toFixed(1)} MiB held in buffers (bound: 4 MiB waiting, 1 MiB in export, twice at most)`,
  );
  await receiver.until(() => (receiver.exports.traces > 0 ? true : undefined));
  t.equal(receiver.exports.traces, 1, 'one trace export, never answered');
  const dropped = await receiver.until(() => {
    const points = receiver.metrics.filter((m) => m.name === 'warden.telemetry.dropped').at(-1)?.points ?? [];
    const last = points.find((p) => p.attributes.signal === 'traces' && p.attributes.reason === 'queue_full')?.value ?? 0;
    return last > 0 ? last : undefined;
  });
  t.ok(dropped >= 500, `${dropped} request spans dropped and counted in warden.telemetry.dropped`);
});
