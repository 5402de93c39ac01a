/**
 * An OTLP/HTTP receiver for the tests: accepts /v1/traces, /v1/logs and /v1/metrics in protobuf
 * (decoded with protobufjs from the OTLP schema below: the opentelemetry-proto field numbers) or
 * JSON, and normalises both into one shape (hex ids, plain attribute objects) the tests assert on.
 * It can also stand for a collector that misbehaves with trace or log exports: one that never answers them,
 * or one that trickles its first answer (`OtlpReceiverOptions`).
 */
import { createServer, type Server } from 'node:http';
import protobuf from 'protobufjs';

// The parts of opentelemetry-proto v1 (common, resource, trace, logs, metrics) the sidecar sends.
const OTLP_PROTO = `
syntax = "proto3";
package otlp;
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
  ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message Resource { repeated KeyValue attributes = 1; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message Span { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5;
  int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9;
  repeated Event events = 11; uint32 dropped_events_count = 12; Status status = 15;
  message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; } }
message Status { string message = 2; int32 code = 3; }
message ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }
message ResourceLogs { Resource resource = 1; repeated ScopeLogs scope_logs = 2; }
message ScopeLogs { InstrumentationScope scope = 1; repeated LogRecord log_records = 2; }
message LogRecord { fixed64 time_unix_nano = 1; int32 severity_number = 2; string severity_text = 3; AnyValue body = 5;
  repeated KeyValue attributes = 6; fixed32 flags = 8; bytes trace_id = 9; bytes span_id = 10; string event_name = 12; }
message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; }
message Metric { string name = 1; string description = 2; string unit = 3;
  oneof data { Gauge gauge = 5; Sum sum = 7; Histogram histogram = 9; } }
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
message Histogram { repeated HistogramDataPoint data_points = 1; int32 aggregation_temporality = 2; }
message NumberDataPoint { repeated KeyValue attributes = 7; fixed64 time_unix_nano = 3; double as_double = 4; sfixed64 as_int = 6; }
message HistogramDataPoint { repeated KeyValue attributes = 9; fixed64 time_unix_nano = 3; fixed64 count = 4; double sum = 5; }
message ExportPartialSuccess { int64 rejected = 1; string error_message = 2; }
message ExportServiceResponse { ExportPartialSuccess partial_success = 1; }
`;
const root = protobuf.parse(OTLP_PROTO, { keepCase: false }).root;
const types = {
  traces: root.lookupType('otlp.ExportTraceServiceRequest'),
  logs: root.lookupType('otlp.ExportLogsServiceRequest'),
  metrics: root.lookupType('otlp.ExportMetricsServiceRequest'),
};
/** The three signals' Export*ServiceResponse share their field numbers: partial_success 1, rejected_* 1, error_message 2. */
const responseType = root.lookupType('otlp.ExportServiceResponse');
const REJECTED_JSON = { traces: 'rejectedSpans', logs: 'rejectedLogRecords', metrics: 'rejectedDataPoints' } as const;

/** A 200 answer with `partial_success`, in the export's format: protobuf, or JSON with the int64 as a string (proto3 JSON). */
export function partialSuccessBody(signal: keyof typeof types, json: boolean, rejected: number, message: string): Buffer {
  if (json) return Buffer.from(JSON.stringify({ partialSuccess: { [REJECTED_JSON[signal]]: String(rejected), errorMessage: message } }));
  return Buffer.from(responseType.encode(responseType.fromObject({ partialSuccess: { rejected, errorMessage: message } })).finish());
}

export type Attrs = Record<string, unknown>;
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Attrs;
  events: { name: string; attributes: Attrs }[];
  droppedEventsCount: number;
  resource: Attrs;
}
export interface ReceivedLog {
  eventName: string;
  body: unknown;
  severityNumber: number;
  traceId: string;
  spanId: string;
  attributes: Attrs;
  resource: Attrs;
}
export interface ReceivedMetric {
  name: string;
  points: { attributes: Attrs; value: number }[];
}

export interface OtlpReceiverOptions {
  /**
   * How trace exports are answered: at once (the default); never (`stall`: a collector that takes
   * requests and hangs); or the first one with 200 and its headers, then a byte of its body every
   * 100 ms, never ending (`trickle-first`), and the others at once.
   */
  traces?: 'answer' | 'stall' | 'trickle-first';
  /** How log exports are answered: at once (the default), or every one trickled as above (`trickle`). */
  logs?: 'answer' | 'trickle';
  /** Every export answered this long after it arrived (a slow collector); changed by `setAnswerDelay`. */
  answerDelayMs?: number;
  /** Every export answered 200 with this `partial_success` (a collector over its quota, or refusing attributes). */
  partialSuccess?: { rejected: number; message: string };
}

export interface OtlpReceiver {
  readonly url: string;
  /** Export requests received, per signal (whether answered or not). */
  readonly exports: { traces: number; logs: number; metrics: number };
  /** Trickled exports whose connection is still open, per signal: the sender has not given them up. */
  readonly trickling: { traces: number; logs: number };
  readonly spans: ReceivedSpan[];
  readonly logs: ReceivedLog[];
  readonly metrics: ReceivedMetric[];
  /** Content types seen, per signal path. */
  readonly contentTypes: Set<string>;
  until<T>(find: () => T | undefined, timeoutMs?: number): Promise<T>;
  /** Exports arriving from now on are answered after `ms` (0: at once). */
  setAnswerDelay(ms: number): void;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

/** Hex from protobuf bytes (a Uint8Array) or OTLP/JSON (already hex). */
function hex(id: unknown): string {
  if (id instanceof Uint8Array) return Buffer.from(id).toString('hex');
  return typeof id === 'string' ? id.toLowerCase() : '';
}

function anyValue(v: Json | undefined): unknown {
  if (!v) return undefined;
  const get = (camel: string) => v[camel];
  if (get('stringValue') !== undefined) return get('stringValue');
  if (get('boolValue') !== undefined) return get('boolValue');
  if (get('intValue') !== undefined) return Number(get('intValue'));
  if (get('doubleValue') !== undefined) return Number(get('doubleValue'));
  if (get('arrayValue') !== undefined) return ((get('arrayValue') as Json).values as Json[] | undefined)?.map(anyValue) ?? [];
  if (get('kvlistValue') !== undefined) return attrs((get('kvlistValue') as Json).values as Json[]);
  return undefined;
}

function attrs(list: Json[] | undefined): Attrs {
  const out: Attrs = {};
  for (const kv of list ?? []) out[String(kv.key)] = anyValue(kv.value as Json);
  return out;
}

function toObject(signal: keyof typeof types, body: Buffer, contentType: string): Json {
  if (contentType.includes('json')) return JSON.parse(body.toString('utf8')) as Json;
  const message = types[signal].decode(body);
  return types[signal].toObject(message, { longs: String, bytes: Array, defaults: false, oneofs: false });
}

function asBytes(v: unknown): unknown {
  return Array.isArray(v) ? Uint8Array.from(v as number[]) : v;
}

export async function startOtlpReceiver(options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const exports = { traces: 0, logs: 0, metrics: 0 };
  const trickling = { traces: 0, logs: 0 };
  const trickles: NodeJS.Timeout[] = [];
  const spans: ReceivedSpan[] = [];
  const logs: ReceivedLog[] = [];
  const metrics: ReceivedMetric[] = [];
  const contentTypes = new Set<string>();
  let answerDelayMs = options.answerDelayMs ?? 0;
  const delayed = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const contentType = String(req.headers['content-type'] ?? '');
      const signal = req.url?.endsWith('/v1/traces') ? 'traces' : req.url?.endsWith('/v1/logs') ? 'logs' : 'metrics';
      contentTypes.add(`${signal} ${contentType}`);
      const nth = ++exports[signal];
      try {
        const doc = toObject(signal, Buffer.concat(chunks), contentType);
        if (signal === 'traces') {
          for (const rs of (doc.resourceSpans as Json[] | undefined) ?? []) {
            const resource = attrs((rs.resource as Json | undefined)?.attributes as Json[]);
            for (const ss of (rs.scopeSpans as Json[] | undefined) ?? []) {
              for (const s of (ss.spans as Json[] | undefined) ?? []) {
                spans.push({
                  traceId: hex(asBytes(s.traceId)),
                  spanId: hex(asBytes(s.spanId)),
                  parentSpanId: hex(asBytes(s.parentSpanId)),
                  name: String(s.name),
                  kind: Number(s.kind ?? 0),
                  attributes: attrs(s.attributes as Json[]),
                  events: ((s.events as Json[] | undefined) ?? []).map((e) => ({
                    name: String(e.name),
                    attributes: attrs(e.attributes as Json[]),
                  })),
                  droppedEventsCount: Number(s.droppedEventsCount ?? 0),
                  resource,
                });
              }
            }
          }
        } else if (signal === 'logs') {
          for (const rl of (doc.resourceLogs as Json[] | undefined) ?? []) {
            const resource = attrs((rl.resource as Json | undefined)?.attributes as Json[]);
            for (const sl of (rl.scopeLogs as Json[] | undefined) ?? []) {
              for (const l of (sl.logRecords as Json[] | undefined) ?? []) {
                logs.push({
                  eventName: typeof l.eventName === 'string' ? l.eventName : '',
                  body: anyValue(l.body as Json),
                  severityNumber: Number(l.severityNumber ?? 0),
                  traceId: hex(asBytes(l.traceId)),
                  spanId: hex(asBytes(l.spanId)),
                  attributes: attrs(l.attributes as Json[]),
                  resource,
                });
              }
            }
          }
        } else {
          for (const rm of (doc.resourceMetrics as Json[] | undefined) ?? []) {
            for (const sm of (rm.scopeMetrics as Json[] | undefined) ?? []) {
              for (const m of (sm.metrics as Json[] | undefined) ?? []) {
                const data = (m.sum ?? m.gauge ?? m.histogram) as Json | undefined;
                const points = ((data?.dataPoints as Json[] | undefined) ?? []).map((p) => ({
                  attributes: attrs(p.attributes as Json[]),
                  value: Number(p.asDouble ?? p.asInt ?? p.count ?? 0),
                }));
                metrics.push({ name: String(m.name), points });
              }
            }
          }
        }
        if (signal === 'traces' && options.traces === 'stall') return; // held until the receiver closes
        const type = contentType.includes('json') ? 'application/json' : 'application/x-protobuf';
        if ((signal === 'traces' && options.traces === 'trickle-first' && nth === 1) || (signal === 'logs' && options.logs === 'trickle')) {
          // Each byte resets the sender's idle timeout; the body never ends.
          res.writeHead(200, { 'content-type': type, 'content-length': 1_000_000 });
          const trickle = setInterval(() => res.write('\0'), 100);
          trickles.push(trickle);
          trickling[signal]++;
          res.once('close', () => {
            clearInterval(trickle);
            trickling[signal]--;
          });
          return;
        }
        const partial = options.partialSuccess;
        const answer = () => {
          res.writeHead(200, { 'content-type': type });
          if (partial !== undefined)
            return res.end(partialSuccessBody(signal, contentType.includes('json'), partial.rejected, partial.message));
          res.end(contentType.includes('json') ? '{}' : undefined);
        };
        if (answerDelayMs === 0) return answer();
        const timer = setTimeout(() => {
          delayed.delete(timer);
          answer();
        }, answerDelayMs);
        delayed.add(timer);
      } catch (err) {
        res.writeHead(400);
        res.end(String(err));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    exports,
    trickling,
    spans,
    logs,
    metrics,
    contentTypes,
    setAnswerDelay(ms) {
      answerDelayMs = ms;
    },
    async until(find, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = find();
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error('the OTLP receiver did not get what was expected in time');
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () =>
      new Promise<void>((r) => {
        for (const trickle of trickles) clearInterval(trickle);
        for (const timer of delayed) clearTimeout(timer);
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
