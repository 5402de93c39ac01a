/**
 * A request as OpenTelemetry sees it: a server span (parent: the caller's W3C traceparent), a client
 * span for the upstream call whose context goes to the backend as `traceparent`, request metrics,
 * and every security event of the request as a log record and a span event on its server span
 * (at most 32 of them: request-span-events.ts).
 *
 * The two spans are made from the request and its trace record (request-trace.ts) when it ends
 * (Otel.endRequest: for OTLP/protobuf written at once into their batch, otlp-request-encoder.ts);
 * the sampling decision is the SDK's sampler's. The request's span context travels
 * explicitly, as `traceContext`, to the calls made on its behalf and with its security events
 * (EventBus.emit's `request`): no AsyncLocalStorage context
 * manager is installed, since on Node 20 one makes every promise of the process pay a hook.
 */
import {
  isSpanContextValid,
  propagation,
  trace,
  ROOT_CONTEXT,
  SpanKind,
  TraceFlags,
  type SpanContext,
  type TraceState,
} from '@opentelemetry/api';
import { SeverityNumber, type AnyValueMap } from '@opentelemetry/api-logs';
import { SamplingDecision } from '@opentelemetry/sdk-trace-base';
import type { EventSink, Severity } from './events.js';
import type { Otel } from './otel.js';
import { NO_ATTRIBUTES, NO_LINKS } from './otel-sampler.js';
import { addRequestSpanEvent } from './request-span-events.js';
import { RequestTrace, type TracedRequest } from './request-trace.js';
import { generateSpanId, generateTraceId } from './span-ids.js';
import { injectTraceContext, onlyW3cPropagators } from './w3c-inject.js';
import { isTracePropagationHeader } from './trace-headers.js';

export interface RequestTracing {
  /** Opens the server span of a request that has just arrived and sets its `traceContext`. */
  start(ctx: TracedRequest): void;
  /** Opens the upstream client span and puts its traceparent in the headers for the backend. */
  upstream(ctx: TracedRequest): void;
  /** Closes the request's spans and records its metrics. */
  end(ctx: TracedRequest, status: number): void;
  /** Security events as log records, correlated with the request's span. */
  readonly eventSink: EventSink;
}

const SEVERITY: Record<Severity, SeverityNumber> = {
  debug: SeverityNumber.DEBUG,
  info: SeverityNumber.INFO,
  warn: SeverityNumber.WARN,
  error: SeverityNumber.ERROR,
};

/**
 * `ownMetrics`: record request durations and security events in OTel instruments of its own. The
 * sidecar does not: its OTLP metrics are read from the Prometheus instruments /metrics serves
 * (otel-metrics-bridge.ts), so each request is recorded once. The CA, without /metrics, does.
 */
export function createRequestTracing(otel: Otel, { ownMetrics }: { ownMetrics: boolean }): RequestTracing {
  const { logger, meter, endRequest } = otel;
  const { sampler, sampleNewTrace } = otel.sampling;
  // A request's trace is its traceContext: the request's events carry it (no registry by request id).
  const traceOf = (ctx: TracedRequest): RequestTrace | undefined =>
    ctx.traceContext instanceof RequestTrace ? ctx.traceContext : undefined;
  const duration = ownMetrics
    ? meter.createHistogram('http.server.request.duration', { unit: 's', description: 'Requests, by route and status.' })
    : undefined;
  const securityEvents = ownMetrics
    ? meter.createCounter('warden.security.events', { description: 'Security events by name.' })
    : undefined;

  // The headers the configured propagators read (traceparent, tracestate, baggage by default).
  const fields = propagation.fields();
  const carriesContext = (headers: TracedRequest['headers']) => fields.some((f) => headers[f] !== undefined);
  // Whose context is joined: an untrusted caller's starts a new trace, sampled by our ratio (it
  // could otherwise force every span of its flood to be recorded, or graft spans onto a trace).
  const trust = otel.trustTraceContext;
  const joins = (ctx: TracedRequest) => trust === 'all' || (trust === 'peers' && ctx.peer.verified);
  const w3cOnly = onlyW3cPropagators(fields);
  const headerGetter = {
    get: (carrier: TracedRequest['headers'], key: string) => carrier[key],
    keys: (carrier: TracedRequest['headers']) => Object.keys(carrier),
  };

  return {
    start(ctx) {
      // Most requests from outside carry no trace context: nothing to extract, a new trace.
      const parent =
        carriesContext(ctx.headers) && joins(ctx) ? propagation.extract(ROOT_CONTEXT, ctx.headers, headerGetter) : ROOT_CONTEXT;
      let remote: SpanContext | undefined;
      let traceId: string;
      let sampled: boolean;
      let traceState: TraceState | undefined;
      if (parent === ROOT_CONTEXT) {
        traceId = generateTraceId();
        sampled = sampleNewTrace(traceId);
      } else {
        const caller = trace.getSpanContext(parent);
        remote = caller && isSpanContextValid(caller) ? caller : undefined;
        traceId = remote?.traceId ?? generateTraceId();
        // The samplers built here (otel-sampler.ts) read no attributes: a span's are made only if it is sampled.
        const decision = sampler.shouldSample(parent, traceId, ctx.method, SpanKind.SERVER, NO_ATTRIBUTES, NO_LINKS);
        sampled = decision.decision === SamplingDecision.RECORD_AND_SAMPLED;
        traceState = decision.traceState ?? remote?.traceState;
      }
      const server: SpanContext = {
        traceId,
        spanId: generateSpanId(),
        traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
      };
      if (traceState) server.traceState = traceState;
      ctx.traceContext = new RequestTrace(parent, server, remote, sampled);
    },
    upstream(ctx) {
      const req = traceOf(ctx);
      if (!req) return;
      // Unsampled too: the backend's spans need a parent id.
      req.clientSpanId = generateSpanId();
      req.clientStartedAt = performance.now();
      // What the caller sent is not passed on raw: the propagators write these from the context read
      // (state of another trace beside a traceparent made here, baggage past their limits, a B3 or
      // X-Ray context under trust_trace_context: none, went through untouched: trace-headers.ts).
      const up = ctx.upstreamHeaders;
      for (const name in up) if (isTracePropagationHeader(name)) delete up[name];
      // Baggage comes only from a caller's headers: without any, W3C's propagators write traceparent alone.
      if (w3cOnly && (req.parent === ROOT_CONTEXT || !propagation.getBaggage(req.parent)))
        injectTraceContext(req.server, req.clientSpanId, ctx.upstreamHeaders);
      else propagation.inject(trace.setSpanContext(req.parent, req.clientContext()), ctx.upstreamHeaders);
    },
    end(ctx, status) {
      const endedAt = performance.now();
      duration?.record((endedAt - ctx.startedAt) / 1000, {
        'http.route': ctx.route.id,
        'http.request.method': ctx.method,
        'http.response.status_code': status,
      });
      const req = traceOf(ctx);
      // Ended once: its spans are exported then.
      if (!req?.sampled || req.endedAt !== 0) return;
      req.endedAt = endedAt;
      endRequest(req, ctx, status);
    },
    eventSink(name, severity, attributes, context) {
      securityEvents?.add(1, { 'event.name': name });
      const req = context instanceof RequestTrace ? context : undefined;
      // Events after the request's end (a response checked late) are log records only: its spans are gone.
      if (req?.sampled && req.endedAt === 0) {
        addRequestSpanEvent(req, name, attributes);
        // The stage outcome on the server span: what refused (or flagged) the request, and why.
        // Only a refusal or a detection says so: a token minted for the backend was none, and
        // set the outcome of every request that passed (`warden.event=warden.token.minted`).
        const action = attributes['warden.action'];
        if (action === 'block' || action === 'detect') {
          req.outcome = name;
          req.outcomeCode = attributes['warden.code'];
        }
      }
      logger.emit({
        eventName: name,
        body: name,
        severityNumber: SEVERITY[severity],
        severityText: severity.toUpperCase(),
        attributes: attributes as AnyValueMap,
        ...(context ? { context } : {}),
      });
    },
  };
}
