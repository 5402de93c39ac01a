/**
 * Headers by which tracers propagate a trace: W3C (`traceparent`, `tracestate`, `baggage`), B3
 * single and multi, Jaeger (`uber-trace-id`, `uberctx-*`), OpenTracing's basic tracers
 * (`ot-tracer-*`, `ot-baggage-*`), AWS X-Ray, Google Cloud Trace, SkyWalking (`sw8*`), Datadog,
 * Elastic APM, New Relic, and gRPC's binary context. When Warden traces a request, the backend gets
 * only what the configured propagators write from Warden's own context: a caller's headers in a
 * format Warden does not propagate went through raw, so under `trust_trace_context: none` a backend
 * tracing with B3 or X-Ray still had its sampling forced and its spans grafted onto the caller's
 * trace (docs/adversarial.md 182). Also Sentry (`sentry-trace`: its SDK joins the caller's trace,
 * sampling forced on), Jaeger's debug id and baggage, .NET's `Correlation-Context` (read as baggage
 * when `baggage` is absent), Instana, Dynatrace, AppDynamics, Honeycomb, Envoy's
 * `x-client-trace-id` and `x-ot-span-context`, and Linkerd's `l5d-ctx-*` (red team 29); older
 * SkyWalking (`sw6`, `sw3`), Pinpoint, New Relic's cross-application headers and Alibaba's EagleEye
 * (its review).
 */
const EXACT = new Set([
  'traceparent',
  'tracestate',
  'baggage',
  'b3',
  'uber-trace-id',
  'x-amzn-trace-id',
  'x-cloud-trace-context',
  'elastic-apm-traceparent',
  'newrelic',
  'grpc-trace-bin',
  'sentry-trace',
  'jaeger-debug-id',
  'jaeger-baggage',
  'correlation-context',
  'x-dynatrace',
  'singularityheader',
  'x-honeycomb-trace',
  'x-client-trace-id',
  'x-ot-span-context',
  'x-newrelic-id',
  'x-newrelic-transaction',
]);
const PREFIXES = [
  'x-b3-',
  'uberctx-',
  'ot-tracer-',
  'ot-baggage-',
  'sw8',
  'sw6',
  'sw3',
  'x-datadog-',
  'x-instana-',
  'l5d-ctx-',
  'pinpoint-',
  'eagleeye-',
];

/** `name` in lower case, as Node gives header names. */
export function isTracePropagationHeader(name: string): boolean {
  if (EXACT.has(name)) return true;
  for (const prefix of PREFIXES) if (name.startsWith(prefix)) return true;
  return false;
}
