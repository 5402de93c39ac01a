/**
 * The OTLP/HTTP exporters of log records (protobuf and JSON), spans (JSON) and metrics, made as their
 * packages make them (the library's transport, retries, OTEL_EXPORTER_OTLP_* configuration), but
 * with a serializer that counts what a collector's partial success rejected (rejection-counting.ts):
 * the packages' classes take no serializer. The protobuf span exporters: otlp-proto-exporter.ts.
 */
import { OTLPMetricExporterBase } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPExporterBase, type OTLPExporterNodeConfigBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import {
  JsonLogsSerializer,
  JsonMetricsSerializer,
  JsonTraceSerializer,
  LogsExporterMetricsHelper,
  MetricsExporterMetricsHelper,
  ProtobufLogsSerializer,
  ProtobufMetricsSerializer,
  TraceExporterMetricsHelper,
} from '@opentelemetry/otlp-transformer';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { countingRejections, type OnRejected } from './rejection-counting.js';

const contentType = (json: boolean) => ({ 'Content-Type': json ? 'application/json' : 'application/x-protobuf' });

export function createLogExporter(
  config: OTLPExporterNodeConfigBase,
  json: boolean,
  onRejected: OnRejected,
): OTLPExporterBase<ReadableLogRecord[]> {
  const serializer = countingRejections(
    json ? JsonLogsSerializer : ProtobufLogsSerializer,
    json,
    LogsExporterMetricsHelper.countItems,
    onRejected,
  );
  const options = convertLegacyHttpOptions(config, 'LOGS', 'v1/logs', contentType(json));
  return new OTLPExporterBase(
    createOtlpHttpExportDelegate(options, serializer, 'otlp_http_log_exporter', LogsExporterMetricsHelper, undefined),
  );
}

export function createJsonSpanExporter(config: OTLPExporterNodeConfigBase, onRejected: OnRejected): OTLPExporterBase<ReadableSpan[]> {
  const serializer = countingRejections(JsonTraceSerializer, true, TraceExporterMetricsHelper.countItems, onRejected);
  const options = convertLegacyHttpOptions(config, 'TRACES', 'v1/traces', contentType(true));
  return new OTLPExporterBase(
    createOtlpHttpExportDelegate(options, serializer, 'otlp_http_span_exporter', TraceExporterMetricsHelper, undefined),
  );
}

export function createMetricExporter(config: OTLPExporterNodeConfigBase, json: boolean, onRejected: OnRejected): PushMetricExporter {
  const serializer = countingRejections<ResourceMetrics, unknown>(
    json ? JsonMetricsSerializer : ProtobufMetricsSerializer,
    json,
    MetricsExporterMetricsHelper.countItems,
    onRejected,
  );
  const options = convertLegacyHttpOptions(config, 'METRICS', 'v1/metrics', contentType(json));
  return new OTLPMetricExporterBase(
    createOtlpHttpExportDelegate(options, serializer, 'otlp_http_metric_exporter', MetricsExporterMetricsHelper, undefined),
    config,
  );
}
