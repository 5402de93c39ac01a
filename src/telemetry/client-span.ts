/**
 * Client spans for the calls the sidecar makes on its own (IdP, CA, clamd, Redis): children of
 * the request's span when made on a request's behalf (the handler runs stages in its context),
 * root spans otherwise (enrollment, renewal). Without OTLP export the API is a no-op.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';

export function startClientSpan(name: string, attributes: Attributes): Span {
  // From the API at each call, not cached: a reload that changes `telemetry` replaces the SDK.
  return trace.getTracer('warden').startSpan(name, { kind: SpanKind.CLIENT, attributes }, context.active());
}

export function endClientSpan(span: Span, error?: unknown): void {
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : 'failed' });
  span.end();
}

/** W3C trace context headers that make the callee's span a child of `span` (none without export). */
export function traceHeaders(span: Span): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), carrier);
  return carrier;
}

/** `fn` inside a client span that ends when its promise settles. */
export function clientSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  const span = startClientSpan(name, attributes);
  return fn(span).then(
    (value) => {
      endClientSpan(span);
      return value;
    },
    (err: unknown) => {
      endClientSpan(span, err);
      throw err;
    },
  );
}
