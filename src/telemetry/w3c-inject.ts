/**
 * Injecting a span context into the headers for the backend without the propagation API, when the
 * propagators configured are W3C's alone (tracecontext, baggage: the default) and the request
 * carries no baggage: then what they would write is `traceparent` (and `tracestate`), as below.
 * The API's path builds a context and a span wrapper per request and asks each propagator in turn;
 * on a request's hot path that was ~3 % of the sidecar's throughput (bench/telemetry.js).
 */
import { TraceFlags, type SpanContext } from '@opentelemetry/api';

const W3C_FIELDS = new Set(['traceparent', 'tracestate', 'baggage']);

/** True when `fields` (propagation.fields()) are those of W3C trace context and baggage only. */
export function onlyW3cPropagators(fields: readonly string[]): boolean {
  return fields.length > 0 && fields.every((f) => W3C_FIELDS.has(f));
}

/**
 * What W3CTraceContextPropagator writes for a valid span context (version 00): the context of
 * `trace` (its trace id, flags and state) with span id `spanId`, without making that context.
 */
export function injectTraceContext(trace: SpanContext, spanId: string, headers: Record<string, string | string[] | undefined>): void {
  headers.traceparent = `00-${trace.traceId}-${spanId}-${trace.traceFlags & TraceFlags.SAMPLED ? '01' : '00'}`;
  if (trace.traceState) headers.tracestate = trace.traceState.serialize();
}
