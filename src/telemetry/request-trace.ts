/**
 * A request's trace while it is in flight: its server span's context under the caller's, and what
 * its two spans (server, upstream client) record beyond the request's own fields. The spans are
 * made from this record and the request when it ends: for OTLP/protobuf written straight into
 * their batch (otlp-request-encoder.ts), for OTLP/JSON as RequestSpan records (`requestSpansOf`),
 * which the library's serializer reads.
 *
 * Why not two span objects from the start: their attribute objects, built for every request and
 * read once by the encoder through a generic walk, were most of what tracing cost per request
 * after the encoding itself (docs/observability.md, "Measured cost").
 */
import { pathAttribute } from './attribute-limits.js';
import { SpanKind, SpanStatusCode, type Attributes, type Context, type SpanContext } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { TimedEvent } from '@opentelemetry/sdk-trace-base';
import { RequestSpan } from './request-span.js';
import { SpanContextRef } from './span-context-ref.js';

/** What tracing reads of a request (the pipeline's RequestContext has all of it). */
export interface TracedRequest {
  readonly requestId: string;
  readonly startedAt: number;
  readonly protocol: string;
  readonly method: string;
  readonly path: string;
  readonly clientAddress: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly upstreamHeaders: Record<string, string | string[] | undefined>;
  readonly peer: { readonly verified: boolean; readonly spiffeId?: string | undefined };
  readonly route: { readonly id: string };
  /** Set by `start`: the server span's context, the parent of the calls made on the request's behalf. */
  traceContext: Context;
}

/**
 * The record is the request's trace context too (`traceContext`): the calls made on the request's
 * behalf are its children, and its security events carry it (EventBus.emit), which is how they find
 * their span. No registry of requests in flight keyed by request id is needed.
 */
export class RequestTrace extends SpanContextRef {
  /** The upstream client span's id, once the request is forwarded (sampled requests only). */
  clientSpanId: string | undefined = undefined;
  /** performance.now() when the upstream call started. */
  clientStartedAt = 0;
  /** performance.now() at the end (0 until then). */
  endedAt = 0;
  /** The security events of the request, as span events of its server span (request-span-events.ts). */
  events: TimedEvent[] | undefined = undefined;
  /** Events past the span's limit: counted, not kept. */
  droppedEvents = 0;
  /** The last event's name and code: what refused (or flagged) the request, as server span attributes. */
  outcome: string | undefined = undefined;
  outcomeCode: string | undefined = undefined;

  constructor(
    parent: Context,
    server: SpanContext,
    /** The caller's span, when it sent a valid one: the server span's parent. */
    readonly remote: SpanContext | undefined,
    /** Whether the spans are recorded and exported. */
    readonly sampled: boolean,
  ) {
    super(parent, server);
  }

  /** The server span's context. */
  get server(): SpanContext {
    return this.span;
  }

  /** The upstream client span's context. */
  clientContext(): SpanContext {
    return { ...this.server, spanId: this.clientSpanId as string };
  }
}

/** A span's status for a response status: an error for 5xx, as the HTTP semantic conventions say for servers. */
export const spanErrored = (status: number): boolean => status >= 500;

const ERROR = Object.freeze({ code: SpanStatusCode.ERROR });

/**
 * The request's spans as RequestSpan records (the client span if it was forwarded, then the server span),
 * with the attributes and order `writeRequestSpans` writes: the OTLP/JSON export and the tests read
 * these.
 */
export function requestSpansOf(
  trace: RequestTrace,
  request: TracedRequest,
  status: number,
  resource: Resource,
  scope: InstrumentationScope,
): RequestSpan[] {
  const route = request.route.id;
  const attributes: Attributes = {
    'http.request.method': request.method,
    'url.path': pathAttribute(request.path),
    'network.protocol.version': request.protocol,
    'client.address': request.clientAddress,
    'warden.request.id': request.requestId,
  };
  // A verified certificate's ID only: any client can present a self-signed one naming another workload.
  if (request.peer.verified && request.peer.spiffeId) attributes['warden.peer.id'] = request.peer.spiffeId;
  if (trace.outcome !== undefined) attributes['warden.event'] = trace.outcome;
  if (trace.outcomeCode !== undefined) attributes['warden.code'] = trace.outcomeCode;
  attributes['http.route'] = route;
  attributes['http.response.status_code'] = status;
  const server = new RequestSpan(
    `${request.method} ${route}`,
    SpanKind.SERVER,
    trace.server,
    trace.remote,
    request.startedAt,
    attributes,
    resource,
    scope,
  ).finish(trace.endedAt);
  if (trace.events !== undefined) server.events = trace.events;
  server.droppedEventsCount = trace.droppedEvents;
  if (spanErrored(status)) server.status = ERROR;
  if (trace.clientSpanId === undefined) return [server];
  const client = new RequestSpan(
    'upstream',
    SpanKind.CLIENT,
    trace.clientContext(),
    trace.server,
    trace.clientStartedAt,
    { 'http.request.method': request.method, 'http.response.status_code': status },
    resource,
    scope,
  ).finish(trace.endedAt);
  if (spanErrored(status)) client.status = ERROR;
  return [client, server];
}
