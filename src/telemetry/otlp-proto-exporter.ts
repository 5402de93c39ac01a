/**
 * The OTLP/HTTP protobuf span exporters: the library's transport (endpoint and headers from config
 * or OTEL_EXPORTER_OTLP_*, retries, timeouts, self-metrics) with Warden's span encoder in place of
 * the library's serializer (otlp-span-encoder.ts says why). The same construction as
 * `@opentelemetry/exporter-trace-otlp-proto`'s OTLPTraceExporter, which takes no serializer. The
 * collector's answer is read by Warden: a partial success's rejected spans are counted (rejection-counting.ts).
 */
import { OTLPExporterBase, type IOtlpExportDelegate, type OTLPExporterNodeConfigBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { TraceExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { encodeSpans } from './otlp-span-encoder.js';
import type { SpanBatch } from './span-batch-queue.js';
import { countingRejections, type OnRejected } from './rejection-counting.js';

type HttpOptions = ReturnType<typeof convertLegacyHttpOptions>;

const httpOptions = (config: OTLPExporterNodeConfigBase): HttpOptions =>
  convertLegacyHttpOptions(config, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' });

/** An export delegate of `T` to the traces endpoint: `bytesOf` is its serializer, `countOf` what its self-metrics count. */
function traceDelegate<T>(
  options: HttpOptions,
  bytesOf: (items: T) => Uint8Array,
  countOf: (items: T) => number,
  onRejected: OnRejected,
): IOtlpExportDelegate<T> {
  const serializer = countingRejections({ serializeRequest: bytesOf, deserializeResponse: () => ({}) }, false, countOf, onRejected);
  const metrics = { ...TraceExporterMetricsHelper, countItems: countOf };
  return createOtlpHttpExportDelegate(options, serializer, 'otlp_http_span_exporter', metrics, undefined);
}

/** For the SDK's spans (IdP, clamd, Redis calls), from their export queue (record-batch-queue.ts). */
export function createProtobufSpanExporter(config: OTLPExporterNodeConfigBase, onRejected: OnRejected): SpanExporter {
  return new OTLPExporterBase<ReadableSpan[]>(traceDelegate(httpOptions(config), encodeSpans, (spans) => spans.length, onRejected));
}

/**
 * For batches the request spans' queue has already encoded (span-batch-queue.ts): their bytes are
 * the request, `length` their spans. Made through withOwnAgent (exporter-agent.ts), which gives it
 * the `abort` the queue calls when it gives an export up.
 */
export function createSpanBatchExporter(config: OTLPExporterNodeConfigBase, onRejected: OnRejected): OTLPExporterBase<SpanBatch> {
  return new OTLPExporterBase<SpanBatch>(
    traceDelegate<SpanBatch>(
      httpOptions(config),
      (batch) => batch.bytes,
      (batch) => batch.length,
      onRejected,
    ),
  );
}
