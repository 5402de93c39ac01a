import t from 'tap';
import { ROOT_CONTEXT, defaultTextMapSetter, diag, trace, TraceFlags, type DiagLogger } from '@opentelemetry/api';
import { logRecordLimitsFromEnv, propagatorFromEnv } from '../../../src/telemetry/otel-env.js';

const spanContext = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED };
const context = trace.setSpanContext(ROOT_CONTEXT, spanContext);

/** The header names a propagator writes for a sampled span, sorted. */
function written(env: NodeJS.ProcessEnv): string[] | undefined {
  const propagator = propagatorFromEnv(env);
  if (propagator === undefined) return undefined;
  const carrier: Record<string, string> = {};
  propagator.inject(context, carrier, defaultTextMapSetter);
  return Object.keys(carrier).sort();
}

t.test('unset or empty: W3C trace context (and baggage, which writes nothing without any)', async (t) => {
  t.same(written({}), ['traceparent']);
  t.same(written({ OTEL_PROPAGATORS: ' , ' }), ['traceparent']);
  t.same(propagatorFromEnv({})?.fields().sort(), ['baggage', 'traceparent', 'tracestate']);
});

t.test('each name of the specification that has an implementation', async (t) => {
  t.same(written({ OTEL_PROPAGATORS: 'tracecontext' }), ['traceparent']);
  t.same(written({ OTEL_PROPAGATORS: 'b3' }), ['b3']);
  t.same(written({ OTEL_PROPAGATORS: 'b3multi' }), ['x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid']);
  t.same(written({ OTEL_PROPAGATORS: 'jaeger' }), ['uber-trace-id']);
  t.same(written({ OTEL_PROPAGATORS: 'baggage' }), [], 'baggage alone writes no trace header');
});

t.test('several names: all of them, each once, spaces ignored', async (t) => {
  t.same(written({ OTEL_PROPAGATORS: 'tracecontext, b3 ,tracecontext' }), ['b3', 'traceparent']);
});

t.test('none, or only unknown names: no propagator; an unknown name is warned about and skipped', async (t) => {
  const warnings: string[] = [];
  const logger: DiagLogger = {
    error: () => undefined,
    warn: (message: string) => void warnings.push(message),
    info: () => undefined,
    debug: () => undefined,
    verbose: () => undefined,
  };
  diag.setLogger(logger);
  t.teardown(() => diag.disable());
  t.equal(propagatorFromEnv({ OTEL_PROPAGATORS: 'none' }), undefined);
  t.equal(propagatorFromEnv({ OTEL_PROPAGATORS: 'b3,none' }), undefined, 'none wins');
  t.equal(propagatorFromEnv({ OTEL_PROPAGATORS: 'xray' }), undefined);
  t.same(written({ OTEL_PROPAGATORS: 'xray,b3' }), ['b3']);
  t.equal(warnings.filter((w) => w.includes('"xray"')).length, 2);
});

t.test('log-record limits: OTEL_LOGRECORD_ATTRIBUTE_* first, else OTEL_ATTRIBUTE_*, else the SDK default', async (t) => {
  t.same(logRecordLimitsFromEnv({}), {});
  t.same(logRecordLimitsFromEnv({ OTEL_ATTRIBUTE_COUNT_LIMIT: '32', OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '256' }), {
    attributeCountLimit: 32,
    attributeValueLengthLimit: 256,
  });
  t.same(
    logRecordLimitsFromEnv({
      OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT: '8',
      OTEL_ATTRIBUTE_COUNT_LIMIT: '32',
      OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT: '0',
    }),
    { attributeCountLimit: 8, attributeValueLengthLimit: 0 },
  );
  t.same(
    logRecordLimitsFromEnv({ OTEL_ATTRIBUTE_COUNT_LIMIT: '-1', OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: 'lots' }),
    {},
    'not a count: the default',
  );
  t.same(logRecordLimitsFromEnv({ OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT: ' ', OTEL_ATTRIBUTE_COUNT_LIMIT: '4' }), {
    attributeCountLimit: 4,
  });
});
