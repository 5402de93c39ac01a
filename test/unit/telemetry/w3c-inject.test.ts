import t from 'tap';
import { randomBytes } from 'node:crypto';
import { defaultTextMapSetter, ROOT_CONTEXT, trace, TraceFlags, type SpanContext } from '@opentelemetry/api';
import { CompositePropagator, TraceState, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3Propagator } from '@opentelemetry/propagator-b3';
import { injectTraceContext, onlyW3cPropagators } from '../../../src/telemetry/w3c-inject.js';

const w3c = new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] });

t.test('writes what the W3C propagators write for a context without baggage', async (t) => {
  const states = [undefined, new TraceState('vendor=abc,other=1'), new TraceState('rojo=00f067aa0ba902b7')];
  for (let i = 0; i < 60; i++) {
    const span: SpanContext = {
      traceId: randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      traceFlags: i % 2 ? TraceFlags.SAMPLED : TraceFlags.NONE,
      ...(states[i % 3] ? { traceState: states[i % 3] } : {}),
    };
    const expected: Record<string, string | string[]> = { host: 'orders' };
    w3c.inject(trace.setSpanContext(ROOT_CONTEXT, span), expected, defaultTextMapSetter);
    const fast: Record<string, string | string[]> = { host: 'orders' };
    injectTraceContext({ ...span, spanId: randomBytes(8).toString('hex') }, span.spanId, fast);
    t.same(fast, expected, `span ${i}`);
  }
});

t.test('the fast path applies to W3C propagators only', async (t) => {
  t.equal(onlyW3cPropagators(w3c.fields()), true, 'tracecontext + baggage (the default)');
  t.equal(onlyW3cPropagators(new W3CTraceContextPropagator().fields()), true);
  t.equal(onlyW3cPropagators(['traceparent', 'tracestate', 'x-b3-traceid']), false, 'B3 beside W3C');
  t.equal(onlyW3cPropagators(['b3']), false);
  t.equal(onlyW3cPropagators([]), false, 'no propagator: nothing to write, the API decides');
  t.equal(onlyW3cPropagators(new B3Propagator().fields()), false, "the B3 propagator's own fields");
  t.equal(
    onlyW3cPropagators(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new B3Propagator()] }).fields()),
    false,
    'W3C and B3 together (OTEL_PROPAGATORS=tracecontext,b3)',
  );
});
