/**
 * The propagator OTEL_PROPAGATORS names (the OpenTelemetry specification's values that have a
 * JavaScript implementation: tracecontext, baggage, b3, b3multi, jaeger; `none`), read as
 * `@opentelemetry/sdk-node` read it, which Warden no longer loads (its exporters, detectors and
 * configuration schema cost ~7 MiB of RSS and ~100 ms of start-up; docs/observability.md).
 */
import { diag, type TextMapPropagator } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { JaegerPropagator } from '@opentelemetry/propagator-jaeger';

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
 * The propagator to register, or undefined for none (`none`, or only names without an
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
