/**
 * Client spans for the calls the sidecar makes on its own (IdP, CA, clamd, Redis): children of
 * the request's span when made on a request's behalf (the caller passes the request's
 * `traceContext`), root spans otherwise (enrollment, renewal). Without OTLP export the API is a no-op.
 */
import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';

/** Whose child a call's span is: a request's `traceContext`, or nothing for a call of the sidecar's own. */
export type SpanParent = Context | undefined;

export function startClientSpan(name: string, attributes: Attributes, parent?: SpanParent): Span {
  // From the API at each call, not cached: a reload that changes `telemetry` replaces the SDK.
  return trace.getTracer('warden').startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent ?? ROOT_CONTEXT);
}

export function endClientSpan(span: Span, error?: unknown): void {
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : 'failed' });
  span.end();
}

/** W3C trace context headers that make the callee's span a child of `span` (none without export). */
export function traceHeaders(span: Span): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), carrier);
  return carrier;
}

/** `fn` inside a client span that ends when its promise settles. */
export function clientSpan<T>(name: string, attributes: Attributes, parent: SpanParent, fn: (span: Span) => Promise<T>): Promise<T> {
  const span = startClientSpan(name, attributes, parent);
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
