import t from 'tap';
import { createContextKey, propagation, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { SpanContextRef } from '../../../src/telemetry/span-context-ref.js';

const server = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED };

t.test('reads as the context the API would make: the span on top of the parent entries', async (t) => {
  const caller = trace.setSpanContext(ROOT_CONTEXT, { ...server, spanId: 'b7ad6b7169203331', isRemote: true });
  const parent = propagation.setBaggage(caller, propagation.createBaggage({ tenant: { value: 'acme' } }));
  const ref = new SpanContextRef(parent, server);
  t.same(trace.getSpanContext(ref), server, 'the server span, not the caller');
  t.equal(propagation.getBaggage(ref)?.getEntry('tenant')?.value, 'acme', 'the caller baggage is kept');
  const key = createContextKey('test');
  const child = ref.setValue(key, 42);
  t.equal(child.getValue(key), 42);
  t.same(trace.getSpanContext(child), server, 'a derived context keeps the span');
  t.equal(ref.getValue(key), undefined, 'contexts are immutable: the reference is unchanged');
  t.same(trace.getSpanContext(trace.deleteSpan(ref)), undefined);
});
