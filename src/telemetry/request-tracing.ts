/**
 * A request as OpenTelemetry sees it: a server span (parent: the caller's W3C traceparent), a client
 * span for the upstream call whose context goes to the backend as `traceparent`, request metrics,
 * and every security event of the request as a log record and a span event on its server span.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, ROOT_CONTEXT, type Attributes, type Span } from '@opentelemetry/api';
import { SeverityNumber, type AnyValueMap } from '@opentelemetry/api-logs';
import type { EventSink, Severity } from './events.js';
import type { Otel } from './otel.js';

/** What tracing reads of a request (the pipeline's RequestContext has all of it). */
export interface TracedRequest {
  readonly requestId: string;
  readonly startedAt: number;
  readonly protocol: string;
  readonly method: string;
  readonly path: string;
  readonly clientAddress: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly upstreamHeaders: Record<string, string | string[]>;
  readonly peer: { readonly spiffeId?: string | undefined };
  readonly route: { readonly id: string };
}

export interface RequestTracing {
  /** Opens the server span of a request that has just arrived. */
  start(ctx: TracedRequest): void;
  /** Runs `fn` with the request's server span as the active context (its async calls inherit it). */
  within(ctx: TracedRequest, fn: () => void): void;
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

interface Spans {
  server: Span;
  client?: Span;
}

export function createRequestTracing(otel: Otel): RequestTracing {
  const { tracer, logger, meter } = otel;
  // Keyed by request id: events carry it, so they find their span without a context manager.
  const open = new Map<string, Spans>();
  const duration = meter.createHistogram('http.server.request.duration', {
    unit: 's',
    description: 'Requests through the sidecar, by route and status.',
  });
  const securityEvents = meter.createCounter('warden.security.events', { description: 'Security events by name.' });

  const headerGetter = {
    get: (carrier: TracedRequest['headers'], key: string) => carrier[key],
    keys: (carrier: TracedRequest['headers']) => Object.keys(carrier),
  };

  return {
    start(ctx) {
      const parent = propagation.extract(ROOT_CONTEXT, ctx.headers, headerGetter);
      const server = tracer.startSpan(
        ctx.method,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'http.request.method': ctx.method,
            'url.path': ctx.path,
            'network.protocol.version': ctx.protocol,
            'client.address': ctx.clientAddress,
            'warden.request.id': ctx.requestId,
            ...(ctx.peer.spiffeId ? { 'warden.peer.id': ctx.peer.spiffeId } : {}),
          },
        },
        parent,
      );
      open.set(ctx.requestId, { server });
    },
    within(ctx, fn) {
      const spans = open.get(ctx.requestId);
      if (!spans) return fn();
      context.with(trace.setSpan(ROOT_CONTEXT, spans.server), fn);
    },
    upstream(ctx) {
      const spans = open.get(ctx.requestId);
      if (!spans) return;
      const parent = trace.setSpan(context.active(), spans.server);
      spans.client = tracer.startSpan('upstream', { kind: SpanKind.CLIENT, attributes: { 'http.request.method': ctx.method } }, parent);
      propagation.inject(trace.setSpan(parent, spans.client), ctx.upstreamHeaders);
    },
    end(ctx, status) {
      const route = ctx.route.id;
      duration.record((performance.now() - ctx.startedAt) / 1000, {
        'http.route': route,
        'http.request.method': ctx.method,
        'http.response.status_code': status,
      });
      const spans = open.get(ctx.requestId);
      if (!spans) return;
      open.delete(ctx.requestId);
      const error = status >= 500 ? { code: SpanStatusCode.ERROR } : undefined;
      if (spans.client) {
        spans.client.setAttribute('http.response.status_code', status);
        if (error) spans.client.setStatus(error);
        spans.client.end();
      }
      spans.server.updateName(`${ctx.method} ${route}`);
      spans.server.setAttributes({ 'http.route': route, 'http.response.status_code': status });
      if (error) spans.server.setStatus(error);
      spans.server.end();
    },
    eventSink(name, severity, attributes) {
      securityEvents.add(1, { 'event.name': name });
      const requestId = attributes['warden.request.id'];
      const server = typeof requestId === 'string' ? open.get(requestId)?.server : undefined;
      if (server) {
        server.addEvent(name, attributes as Attributes);
        // The stage outcome on the span: what refused (or flagged) the request, and why.
        server.setAttributes({ 'warden.event': name, ...(attributes['warden.code'] ? { 'warden.code': attributes['warden.code'] } : {}) });
      }
      logger.emit({
        eventName: name,
        body: name,
        severityNumber: SEVERITY[severity],
        severityText: severity.toUpperCase(),
        attributes: attributes as AnyValueMap,
        ...(server ? { context: trace.setSpan(ROOT_CONTEXT, server) } : {}),
      });
    },
  };
}
