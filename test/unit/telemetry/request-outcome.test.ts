/**
 * The server span's stage outcome (`warden.event`, `warden.code`) names what refused or flagged the
 * request, never an event that is neither: a token minted for the backend gave every request that
 * passed `warden.event=warden.token.minted`, so a search for spans with an outcome found them all.
 */
import t from 'tap';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { startOtel, unregisterOtelGlobals } from '../../../src/telemetry/otel.js';
import { createRequestTracing } from '../../../src/telemetry/request-tracing.js';
import type { TracedRequest } from '../../../src/telemetry/request-trace.js';
import { startOtlpReceiver } from '../../support/otlp-receiver.js';

const request = (id: string): TracedRequest => ({
  requestId: id,
  startedAt: performance.now(),
  protocol: '1.1',
  method: 'GET',
  path: `/api/${id}`,
  clientAddress: '192.0.2.7',
  headers: {},
  upstreamHeaders: {},
  peer: { verified: false },
  route: { id: 'api' },
  traceContext: ROOT_CONTEXT,
});

const MINTED = { 'warden.token.issuer': 'idp', 'warden.token.hash': '0123456789abcdef' };

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  t.test(`${protocol}: only a refusal or a detection is the request's outcome`, async (t) => {
    const receiver = await startOtlpReceiver();
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
    const tracing = createRequestTracing(otel, { ownMetrics: false });
    const run = (id: string, events: [string, Record<string, string | number>][], status: number) => {
      const ctx = request(id);
      tracing.start(ctx);
      for (const [name, attributes] of events) tracing.eventSink(name as never, 'info', attributes, ctx.traceContext);
      tracing.end(ctx, status);
    };
    run('passed', [['warden.token.minted', MINTED]], 200);
    run(
      'flagged',
      [
        ['warden.response.invalid', { 'warden.action': 'detect', 'warden.rule': 'openapi.response.status' }],
        ['warden.token.minted', MINTED],
      ],
      200,
    );
    run('refused', [['warden.access.denied', { 'warden.action': 'block', 'warden.code': 'ERR_ACCESS_DENIED' }]], 403);
    const span = (id: string) =>
      receiver.until(() => receiver.spans.find((s) => s.kind === 2 && s.attributes['url.path'] === `/api/${id}`));

    const passed = await span('passed');
    t.same(
      passed.events.map((e) => e.name),
      ['warden.token.minted'],
      'the minted token is still an event on the span',
    );
    t.notOk('warden.event' in passed.attributes, `no outcome on a request that passed (was ${String(passed.attributes['warden.event'])})`);
    t.notOk('warden.code' in passed.attributes);
    const flagged = await span('flagged');
    t.equal(flagged.attributes['warden.event'], 'warden.response.invalid', 'a detection stays the outcome, not the token minted after it');
    t.notOk('warden.code' in flagged.attributes);
    t.match((await span('refused')).attributes, { 'warden.event': 'warden.access.denied', 'warden.code': 'ERR_ACCESS_DENIED' });
  });
}
