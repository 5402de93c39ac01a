/**
 * The OTEL_* variables that `@opentelemetry/sdk-node` read for Warden and the SDK's providers do
 * not read themselves: the propagators (OTEL_PROPAGATORS) and the log-record limits. Warden no
 * longer loads sdk-node, which brought 19 more packages at start for what Warden used of it
 * (docs/observability.md); these read the variables as it did.
 */
import { diag, type TextMapPropagator } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { JaegerPropagator } from '@opentelemetry/propagator-jaeger';
import type { LogRecordLimits } from '@opentelemetry/sdk-logs';

const FACTORIES: ReadonlyMap<string, () => TextMapPropagator> = new Map([
  ['tracecontext', () => new W3CTraceContextPropagator()],
  ['baggage', () => new W3CBaggagePropagator()],
  ['b3', () => new B3Propagator()],
  ['b3multi', () => new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER })],
  ['jaeger', () => new JaegerPropagator()],
]);

/** The default without OTEL_PROPAGATORS: W3C trace context and baggage. */
const defaultPropagator = (): TextMapPropagator =>
  new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] });

/**
 * The propagator OTEL_PROPAGATORS names (the specification's values that have a JavaScript
 * implementation: tracecontext, baggage, b3, b3multi, jaeger; `none`) to register, or undefined for none (`none`, or only names without an
 * implementation, each of which is warned about). Empty or unset means the default.
 */
export function propagatorFromEnv(env: NodeJS.ProcessEnv): TextMapPropagator | undefined {
  const names = [
    ...new Set(
      (env.OTEL_PROPAGATORS ?? '')
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name.length > 0),
    ),
  ];
  if (names.length === 0) return defaultPropagator();
  if (names.includes('none')) return undefined;
  const propagators: TextMapPropagator[] = [];
  for (const name of names) {
    const make = FACTORIES.get(name);
    if (make === undefined) diag.warn(`Propagator "${name}" requested through environment variable is unavailable.`);
    else propagators.push(make());
  }
  if (propagators.length <= 1) return propagators[0];
  return new CompositePropagator({ propagators });
}

/** OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT / _VALUE_LENGTH_LIMIT, else OTEL_ATTRIBUTE_*; unset, negative or not a number: the SDK's default. */
export function logRecordLimitsFromEnv(env: NodeJS.ProcessEnv): LogRecordLimits {
  const count = nonNegative(env.OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT) ?? nonNegative(env.OTEL_ATTRIBUTE_COUNT_LIMIT);
  const length = nonNegative(env.OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT) ?? nonNegative(env.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT);
  const limits: LogRecordLimits = {};
  if (count !== undefined) limits.attributeCountLimit = count;
  if (length !== undefined) limits.attributeValueLengthLimit = length;
  return limits;
}

function nonNegative(raw: string | undefined): number | undefined {
  const value = raw === undefined || raw.trim() === '' ? NaN : Number(raw);
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}
