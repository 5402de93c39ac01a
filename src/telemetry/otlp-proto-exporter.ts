/**
 * The OTLP/HTTP protobuf span exporters: the library's transport (endpoint and headers from config
 * or OTEL_EXPORTER_OTLP_*, retries, timeouts, self-metrics) with Warden's span encoder in place of
 * the library's serializer (otlp-span-encoder.ts says why). The same construction as
 * `@opentelemetry/exporter-trace-otlp-proto`'s OTLPTraceExporter, which takes no serializer.
 */
import type { Agent } from 'node:http';
import { OTLPExporterBase, type IOtlpExportDelegate, type OTLPExporterNodeConfigBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { ProtobufTraceSerializer, TraceExporterMetricsHelper, type IExportTraceServiceResponse } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { encodeSpans } from './otlp-span-encoder.js';
import type { SpanBatch, SpanBatchExporter } from './span-batch-queue.js';

const deserializeResponse = (data: Uint8Array): IExportTraceServiceResponse => ProtobufTraceSerializer.deserializeResponse(data);

type HttpOptions = ReturnType<typeof convertLegacyHttpOptions>;

const httpOptions = (config: OTLPExporterNodeConfigBase): HttpOptions =>
  convertLegacyHttpOptions(config, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' });

/** An export delegate of `T` to the traces endpoint: `bytesOf` is its serializer, `countOf` what its self-metrics count. */
function traceDelegate<T>(options: HttpOptions, bytesOf: (items: T) => Uint8Array, countOf: (items: T) => number): IOtlpExportDelegate<T> {
  const serializer = { serializeRequest: bytesOf, deserializeResponse };
  const metrics = { ...TraceExporterMetricsHelper, countItems: countOf };
  return createOtlpHttpExportDelegate(options, serializer, 'otlp_http_span_exporter', metrics, undefined);
}

/** For the SDK's spans (IdP, clamd, Redis calls), from their export queue (record-batch-queue.ts). */
export function createProtobufSpanExporter(config: OTLPExporterNodeConfigBase): SpanExporter {
  return new OTLPExporterBase<ReadableSpan[]>(traceDelegate(httpOptions(config), encodeSpans, (spans) => spans.length));
}

/**
 * For batches the request spans' queue has already encoded (span-batch-queue.ts): their bytes are
 * the request, `length` their spans. `abort` ends the export in flight when the queue gives it up:
 * the library's request has no handle to cancel it, and its timeout is an idle timeout that a
 * collector trickling its answer never lets fire, so the sockets of this exporter's own agent (the
 * one the configuration makes, TLS options from OTEL_* included) are destroyed.
 */
export function createSpanBatchExporter(config: OTLPExporterNodeConfigBase): OTLPExporterBase<SpanBatch> & Required<SpanBatchExporter> {
  const options = httpOptions(config);
  let agent: Agent | undefined;
  const agentOf = options.agentFactory;
  options.agentFactory = async (protocol) => (agent = await agentOf(protocol));
  const exporter = new OTLPExporterBase<SpanBatch>(
    traceDelegate<SpanBatch>(
      options,
      (batch) => batch.bytes,
      (batch) => batch.length,
    ),
  );
  return Object.assign(exporter, {
    abort(): void {
      for (const sockets of Object.values(agent?.sockets ?? {})) for (const socket of sockets ?? []) socket.destroy();
    },
  });
}
