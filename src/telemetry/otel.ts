/**
 * OpenTelemetry for the sidecar: traces, logs (every security event) and metrics, exported by OTLP
 * over HTTP (protobuf or JSON) to the shared collector. Configured by the standard OTEL_* variables
 * (endpoint, protocol, headers, resource attributes, sampler), which `telemetry.otlp` in
 * sidecar.yaml overrides. Off unless an endpoint is configured one way or the other: then the API
 * calls on the request path are no-ops.
 *
 * Export never blocks a request: bounded queues (a full queue drops, and a collector that is down
 * costs one failed export per batch, off the request path), and every record dropped is counted
 * (telemetry-drops.ts).
 */
import { logs } from '@opentelemetry/api-logs';
import { context, metrics, propagation, trace, TraceFlags } from '@opentelemetry/api';
import type { Logger as OtelLogger } from '@opentelemetry/api-logs';
import type { Meter } from '@opentelemetry/api';
import { detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { LoggerProvider, type LogRecordProcessor, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader, type MetricProducer } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { OtlpConfig } from '../config/types.js';
import { otlpTargets, type OtlpSignal, type OtlpTargets } from '../config/otlp-endpoints.js';
import { createProtobufSpanExporter, createSpanBatchExporter } from './otlp-proto-exporter.js';
import { createJsonSpanExporter, createLogExporter, createMetricExporter } from './otlp-http-exporters.js';
import { withOwnAgent } from './exporter-agent.js';
import { requestSpanCount, writeRequestSpans } from './otlp-request-encoder.js';
import { requestSpansOf, type RequestTrace, type TracedRequest } from './request-trace.js';
import { SpanBatchQueue } from './span-batch-queue.js';
import { withExportBreaker } from './export-breaker.js';
import { LogFold } from './log-fold.js';
import { RecordBatchQueue } from './record-batch-queue.js';
import { DROP_SERIES, TelemetryDrops } from './telemetry-drops.js';
import { createSampling, type Sampling } from './otel-sampler.js';
import { logRecordLimitsFromEnv, propagatorFromEnv } from './otel-env.js';

export interface Otel {
  /** Where each signal is exported; a signal without a URL is not (otlp-endpoints.ts). */
  readonly targets: OtlpTargets;
  readonly logger: OtelLogger;
  readonly meter: Meter;
  /** Request spans are sampled and queued for export outside the SDK's tracer (request-tracing.ts). */
  readonly sampling: Sampling;
  /** Whose trace context a request joins (telemetry.otlp.trust_trace_context). */
  readonly trustTraceContext: 'all' | 'peers' | 'none';
  /**
   * Queues a finished request's spans for export: for OTLP/protobuf written at once into the batch
   * they will be sent in (span-batch-queue.ts says why), for JSON as RequestSpan records, which the
   * library's serializer reads.
   */
  readonly endRequest: (trace: RequestTrace, request: TracedRequest, status: number) => void;
  readonly resource: Resource;
  /** Warden's instrumentation scope: its spans, log records and metrics. */
  readonly scope: InstrumentationScope;
  /** Flushes what is queued (bounded by the exporters' timeouts) and stops exporting. */
  shutdown(): Promise<void>;
  /**
   * Stops the metrics alone (a last collection is exported): a replacing SDK reads the same
   * instruments, and two readers would report every series twice.
   */
  stopMetrics(): Promise<void>;
}

export interface OtelIdentity {
  serviceName: string;
  version: string;
  /** warden.* resource attributes: trust domain, SPIFFE ID. */
  attributes: Record<string, string>;
}

/** A collector that is down: one failed export, then batches dropped unserialized for this long. */
const BREAKER_PAUSE_MS = 5000;

/**
 * Request spans waiting for export, in encoded bytes (span-batch-queue.ts): room for 2 048 spans
 * of a long path and an event or two each. With the batch in export and the buffers' slack (a
 * buffer holds at most twice its bytes), a collector that takes nothing holds less than 16 MiB.
 */
const REQUEST_SPANS_QUEUE_BYTES = 4 * 1024 * 1024;
/** One export request of request spans: well under what collectors accept (4 MiB for gRPC, 20 for the OTel collector's HTTP). */
const REQUEST_SPANS_BATCH_BYTES = 1024 * 1024;

export function startOtel(
  cfg: OtlpConfig | undefined,
  identity: OtelIdentity,
  env: NodeJS.ProcessEnv = process.env,
  /** Metrics kept elsewhere (prom-client), read at each collection. */
  producers: ((resource: Resource, scope: InstrumentationScope) => MetricProducer)[] = [],
  /** Where drops are counted: the sidecar's, kept across reloads and served on /metrics too. */
  drops: TelemetryDrops = new TelemetryDrops(),
): Otel | undefined {
  // Each signal's URL decided here and given to its exporter: the library's own reading of the
  // variables fell back to localhost:4318 on a value it could not parse (otlp-endpoints.ts).
  const targets = otlpTargets(cfg, env);
  if (targets === undefined) return undefined;
  const protocol = cfg?.protocol ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  const json = protocol === 'http/json';
  // Without explicit headers the exporters read OTEL_EXPORTER_OTLP_*HEADERS themselves.
  const timeoutMillis = cfg?.timeout ?? 10_000;
  const common = (signal: OtlpSignal) => ({
    url: targets[signal],
    ...(cfg?.headers ? { headers: cfg.headers } : {}),
    timeoutMillis,
  });
  const droppedSpans = drops.counter('traces');
  const droppedLogs = drops.counter('logs');
  // What a collector's partial success rejects is counted as dropped too (rejection-counting.ts).
  const spansRejected = drops.rejectedBy('traces');
  // Each with its own agent and an abort for the exports its queue gives up (exporter-agent.ts).
  // A signal without a URL is not exported (otlp-endpoints.ts): no exporter, queue or reader for it.
  const tracesOn = targets.traces !== undefined;
  const traceExporter = tracesOn
    ? withExportBreaker(
        withOwnAgent(common('traces'), 'TRACES', (c) =>
          json ? createJsonSpanExporter(c, spansRejected) : createProtobufSpanExporter(c, spansRejected),
        ),
        BREAKER_PAUSE_MS,
        droppedSpans,
      )
    : undefined;
  const logExporter =
    targets.logs === undefined
      ? undefined
      : withExportBreaker(
          withOwnAgent(common('logs'), 'LOGS', (c) => createLogExporter(c, json, drops.rejectedBy('logs'))),
          BREAKER_PAUSE_MS,
          droppedLogs,
        );
  // Its requests end when the reader gives up on an export (at most one interval), or a slow
  // collector gathers one open request per interval.
  const metricsTimeout = Math.min(timeoutMillis, cfg?.export_interval ?? 10_000);
  const metricsOptions = { ...common('metrics'), timeoutMillis: metricsTimeout };
  const metricExporter =
    targets.metrics === undefined ? undefined : createMetricExporter(metricsOptions, json, drops.rejectedBy('metrics'));
  const batch = {
    maxQueueSize: 2048,
    maxExportBatchSize: 512,
    scheduledDelayMillis: cfg?.export_interval ?? 1000,
    exportTimeoutMillis: timeoutMillis,
  };

  // OTEL_RESOURCE_ATTRIBUTES (and OTEL_SERVICE_NAME) add to the resource; the sidecar's own
  // attributes (service.name from sidecar.yaml, version, identity) win over them.
  const resource = detectResources({ detectors: [envDetector] }).merge(
    resourceFromAttributes({ 'service.name': identity.serviceName, 'service.version': identity.version, ...identity.attributes }),
  );
  const scope = { name: 'warden', version: identity.version };
  const metricReader =
    metricExporter &&
    new PeriodicExportingMetricReader({
      exporter: metricExporter,
      metricProducers: producers.map((p) => p(resource, scope)),
      exportIntervalMillis: cfg?.export_interval ?? 10_000,
      exportTimeoutMillis: metricsTimeout,
    });
  const sampling = createSampling(cfg?.sampling_ratio, env);
  const spans = traceExporter && new RecordBatchQueue<ReadableSpan>(traceExporter, batch, droppedSpans);
  const spanProcessor: SpanProcessor | undefined = spans && {
    onStart() {},
    onEnd(span) {
      if (span.spanContext().traceFlags & TraceFlags.SAMPLED) spans.add(span);
    },
    forceFlush: () => spans.forceFlush(),
    shutdown: () => spans.shutdown(),
  };
  const requestSpans =
    json || !tracesOn
      ? undefined
      : new SpanBatchQueue(
          withExportBreaker(
            withOwnAgent(common('traces'), 'TRACES', (c) => createSpanBatchExporter(c, spansRejected)),
            BREAKER_PAUSE_MS,
            droppedSpans,
          ),
          resource,
          scope,
          { ...batch, maxQueueBytes: REQUEST_SPANS_QUEUE_BYTES, maxExportBatchBytes: REQUEST_SPANS_BATCH_BYTES },
          droppedSpans,
        );
  // The three providers registered as @opentelemetry/sdk-node's NodeSDK would (Warden no longer
  // loads it: otel-env.ts), and no context manager: on Node 20 AsyncLocalStorage hooks
  // every promise of the process (~6 % of a request's CPU here, a one-off A/B of two builds). The
  // request's span context is passed to the calls made on its behalf instead.
  const tracerProvider = new BasicTracerProvider({
    resource,
    sampler: sampling.sampler,
    // The SDK flushes and shuts down the request spans' queue with its own processor.
    spanProcessors: [spanProcessor, requestSpans].filter((p) => p !== undefined),
  });
  // Security events: a flood of one caller's folds past half full, so others still find room (log-fold.ts).
  const logRecords = logExporter && new RecordBatchQueue<ReadableLogRecord>(logExporter, batch, droppedLogs, new LogFold());
  const logProcessor: LogRecordProcessor | undefined = logRecords && {
    onEmit: (record) => logRecords.add(record),
    forceFlush: () => logRecords.forceFlush(),
    shutdown: () => logRecords.shutdown(),
  };
  const loggerProvider = new LoggerProvider({
    resource,
    processors: logProcessor ? [logProcessor] : [],
    logRecordLimits: logRecordLimitsFromEnv(env),
  });
  const meterProvider = new MeterProvider({ resource, readers: metricReader ? [metricReader] : [] });
  const propagator = propagatorFromEnv(env);
  if (propagator !== undefined) propagation.setGlobalPropagator(propagator);
  trace.setGlobalTracerProvider(tracerProvider);
  logs.setGlobalLoggerProvider(loggerProvider);
  metrics.setGlobalMeterProvider(meterProvider);
  const meter = metrics.getMeter(scope.name, scope.version);
  meter
    .createObservableCounter('warden.telemetry.dropped', {
      description:
        'Spans, log records and metric data points dropped, by signal (logs, traces, metrics) and reason: queue_full, export_failed (the collector refused them or could not be reached), export_timeout (no answer within timeout), breaker_open (dropped unsent after a failure), collector_rejected (rejected in the partial_success of an export the collector took).',
    })
    .addCallback((observer) => {
      for (const [signal, reason] of DROP_SERIES) observer.observe(drops.counts[signal][reason], { signal, reason });
    });
  return {
    targets,
    sampling,
    trustTraceContext: cfg?.trust_trace_context ?? 'all',
    endRequest: requestSpans
      ? (trace, request, status) => requestSpans.add(requestSpanCount(trace), (w) => writeRequestSpans(w, trace, request, status))
      : spanProcessor
        ? (trace, request, status) => {
            for (const span of requestSpansOf(trace, request, status, resource, scope)) spanProcessor.onEnd(span);
          }
        : () => {},
    resource,
    scope,
    logger: logs.getLogger(scope.name, scope.version),
    meter,
    shutdown: () =>
      Promise.all([tracerProvider.shutdown(), loggerProvider.shutdown(), meterProvider.shutdown()]).then(
        () => undefined,
        () => undefined,
      ),
    stopMetrics: () => metricReader?.shutdown().catch(() => undefined) ?? Promise.resolve(),
  };
}

/**
 * Unregisters the global providers, propagator and context manager an SDK registered, so that a
 * new SDK can register its own (a reload that changes `telemetry`). Tracers and meters obtained
 * before keep pointing at the old SDK: callers get theirs from the API at each use.
 */
export function unregisterOtelGlobals(): void {
  trace.disable();
  metrics.disable();
  logs.disable();
  propagation.disable();
  context.disable();
}
