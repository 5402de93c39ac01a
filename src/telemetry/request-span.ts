/**
 * The two spans of every request (server, upstream client) as plain records that the SDK's batch
 * processor and OTLP exporter read as finished spans (`ReadableSpan`). As the SDK's span objects
 * (context objects, attribute sanitising, per-span timers and self-metrics) a request's two spans
 * cost 7–12 µs; as these records 1.3–2.1 µs, for the same bytes on the wire
 * (`node bench/telemetry-parts.js`). Calls the sidecar makes
 * on a request's behalf (IdP, clamd, Redis) still use the SDK's tracer, as children of these.
 */
import { SpanStatusCode, type Attributes, type HrTime, type SpanContext, type SpanKind, type SpanStatus } from '@opentelemetry/api';
import { hrTime, hrTimeDuration, type InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';

const NO_LINKS: [] = [];

// The time origin as HrTime, once: @opentelemetry/core's hrTime(now) recomputes it and makes three
// arrays per call; a request's two spans read four times each (test/fuzz/otlp-span-encoder checks
// the two agree).
const ORIGIN_SECONDS = Math.trunc(performance.timeOrigin / 1000);
const ORIGIN_NANOS = Math.round((performance.timeOrigin % 1000) * 1e6);

/** The time origin's nanoseconds plus those of `now`'s last second: up to 2e9, carried by the two below. */
const nanosSum = (now: number): number => ORIGIN_NANOS + Math.round((now % 1000) * 1e6);

/** The seconds of hrTimeOf(now), without the array (the span encoder writes times from these two). */
export function secondsOf(now: number): number {
  return ORIGIN_SECONDS + Math.trunc(now / 1000) + (nanosSum(now) >= 1e9 ? 1 : 0);
}

/** The nanoseconds of hrTimeOf(now). */
export function nanosOf(now: number): number {
  const nanos = nanosSum(now);
  return nanos >= 1e9 ? nanos - 1e9 : nanos;
}

/** performance.now() → HrTime, exactly as core's hrTime(now) computes it, in one array. */
export function hrTimeOf(now: number): HrTime {
  return [secondsOf(now), nanosOf(now)];
}
const NO_EVENTS: readonly TimedEvent[] = Object.freeze([]);
const UNSET: SpanStatus = { code: SpanStatusCode.UNSET };

/**
 * With OTLP/JSON, spans wait up to the export interval in their export queue (record-batch-queue.ts), thousands of
 * them (OTLP/protobuf encodes them as they end: span-batch-queue.ts), so they hold as little as
 * they can: times as numbers until the exporter reads them, no event array until an event.
 */
export class RequestSpan implements ReadableSpan {
  readonly links = NO_LINKS;
  events = NO_EVENTS as TimedEvent[];
  readonly ended = true;
  readonly droppedAttributesCount = 0;
  /** Events past the request span's limit (request-span-events.ts). */
  droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  status: SpanStatus = UNSET;
  private finishedAt = 0;

  constructor(
    public name: string,
    readonly kind: SpanKind,
    private readonly context: SpanContext,
    readonly parentSpanContext: SpanContext | undefined,
    /** performance.now() at the start. */
    readonly startedAt: number,
    readonly attributes: Attributes,
    readonly resource: Resource,
    readonly instrumentationScope: InstrumentationScope,
  ) {}

  spanContext(): SpanContext {
    return this.context;
  }

  get startTime(): HrTime {
    return hrTimeOf(this.startedAt);
  }

  /** performance.now() at the end (0 until then). */
  get endedAt(): number {
    return this.finishedAt;
  }

  get endTime(): HrTime {
    return hrTimeOf(this.finishedAt);
  }

  get duration(): HrTime {
    return hrTimeDuration(this.startTime, this.endTime);
  }

  addEvent(name: string, attributes: Attributes): void {
    if (this.events === NO_EVENTS) this.events = [];
    this.events.push({ name, attributes, time: hrTime(), droppedAttributesCount: 0 });
  }

  finish(endedAt: number): this {
    this.finishedAt = endedAt;
    return this;
  }
}
