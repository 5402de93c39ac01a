/**
 * The OTLP/HTTP protobuf span exporter: the library's transport (endpoint and headers from config
 * or OTEL_EXPORTER_OTLP_*, retries, timeouts, self-metrics) with Warden's span encoder in place of
 * the library's serializer (otlp-span-encoder.ts says why). The same construction as
 * `@opentelemetry/exporter-trace-otlp-proto`'s OTLPTraceExporter, which takes no serializer.
 */
import { OTLPExporterBase, type OTLPExporterNodeConfigBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { ProtobufTraceSerializer, TraceExporterMetricsHelper, type IExportTraceServiceResponse } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { encodeSpans } from './otlp-span-encoder.js';
import type { SpanBatch } from './span-batch-queue.js';

const serializer = {
  serializeRequest: encodeSpans,
  deserializeResponse: (data: Uint8Array): IExportTraceServiceResponse => ProtobufTraceSerializer.deserializeResponse(data),
};

export function createProtobufSpanExporter(config: OTLPExporterNodeConfigBase): SpanExporter {
  const options = convertLegacyHttpOptions(config, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' });
  return new OTLPExporterBase<ReadableSpan[]>(
    createOtlpHttpExportDelegate(options, serializer, 'otlp_http_span_exporter', TraceExporterMetricsHelper, undefined),
  );
}

// The exporter's self-metrics count a batch's spans, not its bytes.
const batchMetrics = { ...TraceExporterMetricsHelper, countItems: (batch: SpanBatch) => batch.length };

/** The same transport for batches the queue has already encoded (span-batch-queue.ts): their bytes are the request. */
export function createSpanBatchExporter(config: OTLPExporterNodeConfigBase): OTLPExporterBase<SpanBatch> {
  const options = convertLegacyHttpOptions(config, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' });
  const encoded = {
    serializeRequest: (batch: SpanBatch) => batch.bytes,
    deserializeResponse: serializer.deserializeResponse,
  };
  return new OTLPExporterBase<SpanBatch>(
    createOtlpHttpExportDelegate(options, encoded, 'otlp_http_span_exporter', batchMetrics, undefined),
  );
}
