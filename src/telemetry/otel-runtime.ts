/**
 * The sidecar's OpenTelemetry as a whole, replaceable by a reload: the SDK (process-wide global
 * providers), the request tracing built on it, the Prometheus bridge and the event sink. A changed
 * `telemetry.otlp` restarts the SDK: the old providers are unregistered, the new ones registered,
 * and the old SDK goes on exporting through the drain grace, then flushes and stops.
 *
 * Requests read `tracing` once, when they arrive, and keep that instance: one that is in flight
 * across a reload ends its spans in the SDK that started them. The SDK, its exporters and the
 * request tracing are loaded only once export is configured: with the X.509 library, which the
 * CA and enrolment alone load, that is 16 MiB of an idle sidecar's RSS (bench/idle-rss.js).
 */
import type { Registry } from 'prom-client';
import type { OtlpConfig } from '../config/types.js';
import type { EventBus } from './events.js';
import { otelEnabled } from './otel-enabled.js';
import type { Otel, OtelIdentity } from './otel.js';
import { describeTargets, type OtlpSignal } from '../config/otlp-endpoints.js';
import type { RequestDurations } from './request-durations.js';
import type { RequestTracing } from './request-tracing.js';
import type { TelemetryDrops } from './telemetry-drops.js';

export interface OtelRuntime {
  /** The tracing in force, or undefined while export is off. */
  readonly tracing: RequestTracing | undefined;
  /** Where each signal goes, as a log line shows it (masked, "off …"); undefined while export is off. */
  readonly targets: Record<OtlpSignal, string> | undefined;
  /**
   * Applies a reloaded `telemetry.otlp` (and service identity); resolves to whether anything
   * changed. The old SDK keeps exporting for `graceMs` (requests in flight end their spans there).
   */
  apply(cfg: OtlpConfig | undefined, identity: OtelIdentity, graceMs: number): Promise<boolean>;
  /** Flushes and stops the SDK in force (process exit). */
  shutdown(): Promise<void>;
}

interface Running {
  readonly otel: Otel;
  readonly tracing: RequestTracing;
}

export async function startOtelRuntime(
  cfg: OtlpConfig | undefined,
  identity: OtelIdentity,
  deps: { registry: Registry; requestDurations: RequestDurations; events: EventBus; drops: TelemetryDrops },
): Promise<OtelRuntime> {
  const keyOf = (c: OtlpConfig | undefined, id: OtelIdentity) => JSON.stringify([c ?? null, id]);
  let key: string | undefined = keyOf(cfg, identity);
  const start = async (c: OtlpConfig | undefined, id: OtelIdentity): Promise<Running | undefined> => {
    if (!otelEnabled(c)) return undefined;
    const [{ startOtel }, bridge, { createRequestTracing }] = await Promise.all([
      import('./otel.js'),
      import('./otel-metrics-bridge.js'),
      import('./request-tracing.js'),
    ]);
    const otel = startOtel(c, id, process.env, [bridge.requestDurationProducer(deps.requestDurations)], deps.drops);
    if (!otel) return undefined;
    bridge.exportPrometheusInstruments(otel.meter, deps.registry);
    return { otel, tracing: createRequestTracing(otel, { ownMetrics: false }) };
  };
  let running = await start(cfg, identity);
  // One sink for the process's life, writing to whichever SDK is in force.
  deps.events.addSink((name, severity, attributes, context) => running?.tracing.eventSink(name, severity, attributes, context));

  return {
    get tracing() {
      return running?.tracing;
    },
    get targets() {
      return running && describeTargets(running.otel.targets);
    },
    async apply(next, nextIdentity, graceMs) {
      const nextKey = keyOf(next, nextIdentity);
      if (nextKey === key) return false;
      const previous = running;
      running = undefined;
      // Nothing is running until the start below succeeds: a start that throws leaves export off,
      // and the next reload, even with the same file, tries again (the key was set first, and the
      // same file was taken for unchanged: off until the file changed).
      key = undefined;
      if (previous) {
        // The global providers are the old SDK's until unregistered; a new SDK registers its own.
        (await import('./otel.js')).unregisterOtelGlobals();
        // Traces and events of requests in flight still end in the old SDK; its metrics stop now.
        void previous.otel.stopMetrics();
        setTimeout(() => void previous.otel.shutdown(), graceMs).unref();
      }
      try {
        running = await start(next, nextIdentity);
      } catch (err) {
        // What it registered before it threw would keep the retry's providers from registering.
        (await import('./otel.js')).unregisterOtelGlobals();
        throw err;
      }
      key = nextKey;
      return true;
    },
    async shutdown() {
      await running?.otel.shutdown();
      deps.drops.report(); // what the last flush dropped too, without waiting for the next line's turn
    },
  };
}
