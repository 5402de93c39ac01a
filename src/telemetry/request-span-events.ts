/**
 * A request's security events as span events of its server span: at most MAX_REQUEST_SPAN_EVENTS,
 * the rest counted in the span's dropped events count as the SDK counts them, and without the
 * request's own fields, which the span carries once. Log records keep every event whole.
 *
 * Why: request spans are made outside the SDK (request-trace.ts), so its limit of 128 events per
 * span never applied. One upload raised an event per multipart part, each with a copy of the
 * 1 KiB path and the user agent: a 1.65 MB span, and a slow collector let a few hundred of them
 * hold gigabytes (docs/adversarial.md, defect 109).
 */
import type { Attributes } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import type { EventAttributes, EventName } from './events.js';
import type { RequestTrace } from './request-trace.js';

/** Events kept on one request's server span; a request that raises more is an attack or a storm, and the first ones say what it was. */
export const MAX_REQUEST_SPAN_EVENTS = 32;

/** What the server span records of the request (otlp-request-encoder.ts), from the same request as the event's. */
const ON_THE_SPAN: ReadonlySet<string> = new Set([
  'http.request.method',
  'url.path',
  'http.route',
  'client.address',
  'network.protocol.version',
  'warden.request.id',
]);

const USER_AGENT = 'user_agent.original';

/** Adds an event to the request's server span, or counts it as dropped when the span has its fill. */
export function addRequestSpanEvent(trace: RequestTrace, name: EventName, attributes: EventAttributes): void {
  const events = (trace.events ??= []);
  if (events.length >= MAX_REQUEST_SPAN_EVENTS) {
    trace.droppedEvents++;
    return;
  }
  const kept: Attributes = {};
  for (const key in attributes) {
    if (ON_THE_SPAN.has(key)) continue;
    const value = attributes[key as keyof EventAttributes];
    if (typeof value !== 'string' && typeof value !== 'number') continue;
    // The user agent is not a span attribute (it would cost every request's span): the first event that has it keeps it.
    if (key === USER_AGENT && events.some((e) => e.attributes?.[USER_AGENT] !== undefined)) continue;
    kept[key] = value;
  }
  events.push({ name, attributes: kept, time: hrTime(), droppedAttributesCount: 0 });
}
