/**
 * A request's spans (request-trace.ts) written straight into an OTLP/protobuf batch: byte for byte
 * what `writeSpan` writes for the RequestSpan records `requestSpansOf` makes of the same request
 * (test/fuzz/otlp-request-encoder compares the two), without making those records.
 *
 * Why: through the records, each request built two attribute objects that the encoder then walked
 * generically (a key lookup, a type switch and two nested lengths per attribute). Here the keys,
 * the fixed fields and the span's tail are bytes encoded once, and a short ASCII attribute (most of
 * them: method, path, addresses, ids, route) is written in one pass with its lengths known up
 * front. Anything else takes the general path of otlp-span-encoder.ts.
 */
import { pathAttribute } from './attribute-limits.js';
import { copyAscii, timeOfNow, varintSize, writeEvent, type Writer } from './otlp-span-encoder.js';
import { spanErrored, type RequestTrace, type TracedRequest } from './request-trace.js';

/** Span fields as tag bytes (field << 3 | wire type). */
const TRACE_ID = 0x0a;
const SPAN_ID = 0x12;
const TRACE_STATE = 0x1a;
const PARENT_SPAN_ID = 0x22;
const NAME = 0x2a;
const START = 0x39;
const END = 0x41;
const ATTRIBUTE = 0x4a;
const EVENT = 0x5a;
const DROPPED_EVENTS = 0x60;
/** ScopeSpans.spans: what each span of a batch is wrapped in. */
const SCOPE_SPAN = 0x12;
const HAS_IS_REMOTE = 0x100;
const IS_REMOTE = 0x200;
const STATUS_ERROR = 2;

/** A KeyValue's key (field 1: tag, length, UTF-8) and the tag of its value (field 2), encoded once. */
function keyPrefix(key: string): Uint8Array {
  const utf8 = Buffer.from(key, 'utf8');
  return Uint8Array.from([0x0a, utf8.length, ...utf8, 0x12]);
}

const METHOD = keyPrefix('http.request.method');
const URL_PATH = keyPrefix('url.path');
const PROTOCOL = keyPrefix('network.protocol.version');
const CLIENT_ADDRESS = keyPrefix('client.address');
const REQUEST_ID = keyPrefix('warden.request.id');
const PEER_ID = keyPrefix('warden.peer.id');
const OUTCOME = keyPrefix('warden.event');
const OUTCOME_CODE = keyPrefix('warden.code');
const ROUTE = keyPrefix('http.route');
const STATUS_CODE = keyPrefix('http.response.status_code');

/** The client span's name ("upstream") and kind (CLIENT, + 1 as OTLP numbers kinds). */
const CLIENT_NAME_AND_KIND = Uint8Array.from([NAME, 8, ...Buffer.from('upstream'), 0x30, 3]);
/** The server span's kind (SERVER, + 1). */
const SERVER_KIND = Uint8Array.from([0x30, 2]);

/** A string attribute (Span field 9): in one pass when it is short ASCII, else as the general encoder writes it. */
function stringAttribute(w: Writer, prefix: Uint8Array, value: string): void {
  const n = value.length;
  const kvLength = prefix.length + 3 + n;
  if (kvLength < 0x80) {
    w.ensure(kvLength + 2);
    const buf = w.buf;
    let p = w.pos;
    buf[p++] = ATTRIBUTE;
    buf[p++] = kvLength;
    buf.set(prefix, p);
    p += prefix.length;
    buf[p++] = n + 2; // AnyValue: string_value's tag, length, bytes
    buf[p++] = 0x0a;
    buf[p++] = n;
    const end = copyAscii(buf, p, value);
    if (end >= 0) {
      w.pos = end;
      return;
    }
  }
  // Long or not ASCII: lengths known only once written (a copy of what the general path does).
  w.byte(ATTRIBUTE);
  const kv = w.open();
  w.raw(prefix);
  const any = w.open();
  w.byte(0x0a);
  w.string(value);
  w.close(any);
  w.close(kv);
}

/** An integer attribute (non-negative, below 2^32: a status code). */
function intAttribute(w: Writer, prefix: Uint8Array, value: number): void {
  const anyLength = 1 + varintSize(value);
  w.byte(ATTRIBUTE);
  w.byte(prefix.length + 1 + anyLength);
  w.raw(prefix);
  w.byte(anyLength);
  w.byte(0x18); // int_value
  w.varint(value);
}

/** The server span's name, `${method} ${route}`, without building the string when both are short ASCII. */
function serverName(w: Writer, method: string, route: string): void {
  const n = method.length + 1 + route.length;
  if (n < 0x80) {
    w.ensure(n + 2);
    const buf = w.buf;
    let p = w.pos;
    buf[p++] = NAME;
    buf[p++] = n;
    const afterMethod = copyAscii(buf, p, method);
    if (afterMethod >= 0) {
      buf[afterMethod] = 0x20;
      const end = copyAscii(buf, afterMethod + 1, route);
      if (end >= 0) {
        w.pos = end;
        return;
      }
    }
  }
  w.byte(NAME);
  w.string(`${method} ${route}`);
}

/** The fields after a span's events: their dropped count (request-span-events.ts), then what a request span always has the same way. */
function tail(w: Writer, droppedEvents: number, errored: boolean, traceFlags: number, parentIsRemote: boolean): void {
  w.byte(DROPPED_EVENTS); // after the events; dropped attributes is written before them
  w.varint(droppedEvents);
  w.ensure(12);
  const buf = w.buf;
  let p = w.pos;
  buf[p++] = 0x70; // dropped links: 0 (a request span has no links)
  buf[p++] = 0;
  buf[p++] = 0x7a; // status: its code alone
  buf[p++] = 2;
  buf[p++] = 0x18;
  buf[p++] = errored ? STATUS_ERROR : 0;
  buf[p++] = 0x85; // flags (field 16, fixed32)
  buf[p++] = 0x01;
  buf.writeUInt32LE(((traceFlags & 0xff) | HAS_IS_REMOTE | (parentIsRemote ? IS_REMOTE : 0)) >>> 0, p);
  w.pos = p + 4;
}

function droppedAttributes(w: Writer): void {
  w.byte(0x50);
  w.byte(0);
}

function traceState(w: Writer, trace: RequestTrace): void {
  const state = trace.server.traceState?.serialize();
  if (!state) return;
  w.byte(TRACE_STATE);
  w.string(state);
}

function clientSpan(w: Writer, trace: RequestTrace, request: TracedRequest, status: number): void {
  w.byte(SCOPE_SPAN);
  const at = w.open();
  const server = trace.server;
  w.byte(TRACE_ID);
  w.hex(server.traceId);
  w.byte(SPAN_ID);
  w.hex(trace.clientSpanId as string);
  traceState(w, trace);
  w.byte(PARENT_SPAN_ID);
  w.hex(server.spanId);
  w.raw(CLIENT_NAME_AND_KIND);
  w.byte(START);
  timeOfNow(w, trace.clientStartedAt);
  w.byte(END);
  timeOfNow(w, trace.endedAt);
  stringAttribute(w, METHOD, request.method);
  intAttribute(w, STATUS_CODE, status);
  droppedAttributes(w);
  tail(w, 0, spanErrored(status), server.traceFlags, server.isRemote === true);
  w.close(at);
}

function serverSpan(w: Writer, trace: RequestTrace, request: TracedRequest, status: number): void {
  w.byte(SCOPE_SPAN);
  const at = w.open();
  const server = trace.server;
  const remote = trace.remote;
  w.byte(TRACE_ID);
  w.hex(server.traceId);
  w.byte(SPAN_ID);
  w.hex(server.spanId);
  traceState(w, trace);
  if (remote?.spanId) {
    w.byte(PARENT_SPAN_ID);
    w.hex(remote.spanId);
  }
  const route = request.route.id;
  serverName(w, request.method, route);
  w.raw(SERVER_KIND);
  w.byte(START);
  timeOfNow(w, request.startedAt);
  w.byte(END);
  timeOfNow(w, trace.endedAt);
  stringAttribute(w, METHOD, request.method);
  stringAttribute(w, URL_PATH, pathAttribute(request.path));
  stringAttribute(w, PROTOCOL, request.protocol);
  stringAttribute(w, CLIENT_ADDRESS, request.clientAddress);
  stringAttribute(w, REQUEST_ID, request.requestId);
  if (request.peer.verified && request.peer.spiffeId) stringAttribute(w, PEER_ID, request.peer.spiffeId);
  if (trace.outcome !== undefined) stringAttribute(w, OUTCOME, trace.outcome);
  if (trace.outcomeCode !== undefined) stringAttribute(w, OUTCOME_CODE, trace.outcomeCode);
  stringAttribute(w, ROUTE, route);
  intAttribute(w, STATUS_CODE, status);
  droppedAttributes(w);
  if (trace.events !== undefined)
    for (const e of trace.events) {
      w.byte(EVENT);
      writeEvent(w, e);
    }
  tail(w, trace.droppedEvents, spanErrored(status), server.traceFlags, remote?.isRemote === true);
  w.close(at);
}

/** The request's spans as entries of ScopeSpans.spans: the client span if it was forwarded, then the server span. */
export function writeRequestSpans(w: Writer, trace: RequestTrace, request: TracedRequest, status: number): void {
  if (trace.clientSpanId !== undefined) clientSpan(w, trace, request, status);
  serverSpan(w, trace, request, status);
}

/** The number of spans `writeRequestSpans` writes for `trace`. */
export const requestSpanCount = (trace: RequestTrace): number => (trace.clientSpanId === undefined ? 1 : 2);
