/**
 * OTLP/protobuf encoding of finished spans (an ExportTraceServiceRequest), byte for byte what
 * `@opentelemetry/otlp-transformer`'s ProtobufTraceSerializer writes (test/fuzz/otlp-span-encoder
 * compares the two on generated spans), in 0.34–0.41 of the time (`node bench/telemetry-parts.js`).
 *
 * Why: serialising two spans per request was the largest single cost of tracing (~45 % of it by
 * profile). The library measures every message in a first pass, then writes it; this writes once
 * and moves a message's content on the rare occasion its length needs more than one byte, keeps
 * the encoded form of attribute keys (they repeat in every span), and leaves only long or
 * non-ASCII strings to Buffer's native encoder (a native call costs more than a short loop). The library's transport (HTTP,
 * retries, headers, timeouts) is kept; only its serializer is swapped (otlp-proto-exporter.ts).
 */
import type { Attributes, HrTime, Link } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import { nanosOf, RequestSpan, secondsOf } from './request-span.js';

const LEN = 2;
const VARINT = 0;
const I64 = 1;
const I32 = 5;
const HAS_IS_REMOTE = 0x100;
const IS_REMOTE = 0x200;
const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63;

/** Hex digit (either case) → its value. Trace and span ids are always valid hex (the API checks them). */
const NIBBLE = new Uint8Array(128);
for (let i = 0; i < 10; i++) NIBBLE[48 + i] = i;
for (let i = 0; i < 6; i++) NIBBLE[65 + i] = NIBBLE[97 + i] = 10 + i;

/** Bytes of `n` (< 2^35) as a varint. */
export const varintSize = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

/**
 * Copies `s` into `buf` at `at` as bytes if it is all ASCII (the caller has made room): the
 * position after it, or -1 at the first character that is not ASCII.
 */
export function copyAscii(buf: Buffer, at: number, s: string): number {
  let p = at;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return -1;
    buf[p++] = c;
  }
  return p;
}

export class Writer {
  buf: Buffer;
  pos = 0;

  constructor(capacity = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  tag(field: number, wire: number): void {
    const tag = (field << 3) | wire;
    if (tag < 0x80) this.byte(tag);
    else this.varint(tag); // field 16 (span flags)
  }

  varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    if (value >= 0 && value <= 0xffffffff) {
      let v = value >>> 0;
      while (v > 0x7f) {
        buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      buf[this.pos++] = v;
      return;
    }
    // int64 (two's complement for negatives), as the library writes it.
    const abs = Math.abs(value);
    let low = abs >>> 0;
    let high = (abs / 0x100000000) >>> 0;
    if (value < 0) {
      low = ~low >>> 0;
      high = ~high >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    while (high > 0 || low > 0x7f) {
      buf[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    buf[this.pos++] = low & 0x7f;
  }

  fixed32(value: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
  }

  fixed64(low: number, high: number): void {
    this.ensure(8);
    this.buf.writeUInt32LE(low >>> 0, this.pos);
    this.buf.writeUInt32LE(high >>> 0, this.pos + 4);
    this.pos += 8;
  }

  double(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** Opens a length-delimited field: one byte reserved for its length (most are < 128 bytes). */
  open(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** Closes what `open` started: writes the length, moving the content if it needs more bytes. */
  close(at: number): void {
    const length = this.pos - at - 1;
    if (length < 0x80) {
      this.buf[at] = length;
      return;
    }
    const size = varintSize(length);
    this.ensure(size - 1);
    this.buf.copyWithin(at + size, at + 1, this.pos);
    this.pos += size - 1;
    let v = length;
    let p = at;
    while (v > 0x7f) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
  }

  string(s: string): void {
    const n = s.length;
    this.ensure(5 + n * 3);
    const at = this.pos++;
    // Short ASCII strings (most attribute values) in a loop: a native Buffer.write call costs more.
    if (n < 64) {
      const end = copyAscii(this.buf, this.pos, s);
      if (end >= 0) {
        this.pos = end;
        this.close(at);
        return;
      }
    }
    this.pos += this.buf.write(s, this.pos, 'utf8');
    this.close(at);
  }

  /** A trace or span id (16 or 8 bytes, so a one-byte length): hex to bytes in a loop. */
  hex(id: string): void {
    const n = id.length >>> 1;
    this.ensure(1 + n);
    const buf = this.buf;
    buf[this.pos++] = n;
    for (let i = 0; i < n; i++)
      buf[this.pos++] = ((NIBBLE[id.charCodeAt(2 * i)] as number) << 4) | (NIBBLE[id.charCodeAt(2 * i + 1)] as number);
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  raw(b: Uint8Array): void {
    const n = b.length;
    this.ensure(n);
    // TypedArray#set is a V8 builtin, not a call into Node's C++: cheaper than a loop past a few bytes.
    this.buf.set(b, this.pos);
    this.pos += n;
  }
}

/** HrTime → nanoseconds since the epoch as fixed64 (low, high), exactly as the library splits it. */
function time(w: Writer, t: HrTime): void {
  timeOf(w, t[0], t[1]);
}

/** A request span's start or end (performance.now()), as `time` writes its HrTime, without making one. */
export function timeOfNow(w: Writer, now: number): void {
  timeOf(w, secondsOf(now), nanosOf(now));
}

function timeOf(w: Writer, seconds: number, nanos: number): void {
  const secondsLow16 = seconds & 0xffff;
  const secondsHigh = (seconds / 0x10000) >>> 0;
  const fromLow = secondsLow16 * 1e9;
  const fromHigh = secondsHigh * 1e9;
  const low = (fromLow >>> 0) + (((fromHigh & 0xffff) * 0x10000) >>> 0) + nanos;
  const high = Math.floor(fromLow / 0x100000000) + ((fromHigh / 0x10000) >>> 0) + Math.floor(low / 0x100000000);
  w.fixed64(low >>> 0, high >>> 0);
}

// "key" of a KeyValue (tag, length, UTF-8), for the keys every span repeats.
const KEYS = new Map<string, Buffer>();
const MAX_CACHED_KEYS = 512;

function key(w: Writer, k: string): void {
  const encoded = KEYS.get(k);
  if (encoded === undefined) {
    const before = w.pos;
    w.tag(1, LEN);
    w.string(k);
    if (KEYS.size < MAX_CACHED_KEYS) KEYS.set(k, Buffer.from(w.buf.subarray(before, w.pos)));
    return;
  }
  w.raw(encoded);
}

function anyValue(w: Writer, value: unknown): void {
  switch (typeof value) {
    case 'string':
      w.tag(1, LEN);
      w.string(value);
      return;
    case 'boolean':
      w.tag(2, VARINT);
      w.byte(value ? 1 : 0);
      return;
    case 'number':
      if (Number.isInteger(value) && value >= INT64_MIN && value < INT64_MAX) {
        w.tag(3, VARINT);
        w.varint(value);
      } else {
        w.tag(4, I64);
        w.double(value);
      }
      return;
  }
  if (value instanceof Uint8Array) {
    w.tag(7, LEN);
    w.bytes(value);
  } else if (Array.isArray(value)) {
    w.tag(5, LEN);
    const array = w.open();
    for (const item of value as unknown[]) {
      w.tag(1, LEN);
      const at = w.open();
      anyValue(w, item);
      w.close(at);
    }
    w.close(array);
  } else if (typeof value === 'object' && value !== null) {
    w.tag(6, LEN);
    const list = w.open();
    for (const k in value) {
      if (!Object.prototype.hasOwnProperty.call(value, k)) continue;
      w.tag(1, LEN);
      const kv = w.open();
      key(w, k);
      w.tag(2, LEN);
      const at = w.open();
      anyValue(w, (value as Record<string, unknown>)[k]);
      w.close(at);
      w.close(kv);
    }
    w.close(list);
  }
  // Anything else (undefined, functions): nothing, as the library does.
}

function attributes(w: Writer, attrs: Attributes, field: number): void {
  for (const k in attrs) {
    if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
    w.tag(field, LEN);
    const kv = w.open();
    key(w, k);
    w.tag(2, LEN);
    const at = w.open();
    anyValue(w, attrs[k]);
    w.close(at);
    w.close(kv);
  }
}

/** A span event's message (the content of Span field 11). */
export function writeEvent(w: Writer, e: TimedEvent): void {
  const at = w.open();
  w.tag(1, I64);
  time(w, e.time);
  w.tag(2, LEN);
  w.string(e.name);
  if (e.attributes) attributes(w, e.attributes, 3);
  w.tag(4, VARINT);
  w.varint(e.droppedAttributesCount || 0);
  w.close(at);
}

function link(w: Writer, l: Link): void {
  const at = w.open();
  w.tag(1, LEN);
  w.hex(l.context.traceId);
  w.tag(2, LEN);
  w.hex(l.context.spanId);
  const state = l.context.traceState?.serialize();
  if (state) {
    w.tag(3, LEN);
    w.string(state);
  }
  if (l.attributes) attributes(w, l.attributes, 4);
  w.tag(5, VARINT);
  w.varint(l.droppedAttributesCount || 0);
  w.tag(6, I32);
  w.fixed32((l.context.traceFlags & 0xff) | HAS_IS_REMOTE | (l.context.isRemote ? IS_REMOTE : 0));
  w.close(at);
}

function span(w: Writer, s: ReadableSpan): void {
  const at = w.open();
  const ctx = s.spanContext();
  w.tag(1, LEN);
  w.hex(ctx.traceId);
  w.tag(2, LEN);
  w.hex(ctx.spanId);
  const state = ctx.traceState?.serialize();
  if (state) {
    w.tag(3, LEN);
    w.string(state);
  }
  const parent = s.parentSpanContext;
  if (parent?.spanId) {
    w.tag(4, LEN);
    w.hex(parent.spanId);
  }
  w.tag(5, LEN);
  w.string(s.name);
  const kind = (s.kind as number | undefined) == null ? 0 : s.kind + 1;
  if (kind !== 0) {
    w.tag(6, VARINT);
    w.varint(kind);
  }
  // A request span keeps its times as performance.now() numbers: written without making HrTime arrays.
  const own = s instanceof RequestSpan ? s : undefined;
  w.tag(7, I64);
  if (own) timeOfNow(w, own.startedAt);
  else time(w, s.startTime);
  w.tag(8, I64);
  if (own) timeOfNow(w, own.endedAt);
  else time(w, s.endTime);
  attributes(w, s.attributes, 9);
  w.tag(10, VARINT);
  w.varint(s.droppedAttributesCount);
  for (const e of s.events) {
    w.tag(11, LEN);
    writeEvent(w, e);
  }
  w.tag(12, VARINT);
  w.varint(s.droppedEventsCount);
  for (const l of s.links) {
    w.tag(13, LEN);
    link(w, l);
  }
  w.tag(14, VARINT);
  w.varint(s.droppedLinksCount);
  w.tag(15, LEN);
  const status = w.open();
  if (s.status.message) {
    w.tag(2, LEN);
    w.string(s.status.message);
  }
  w.tag(3, VARINT);
  w.varint(s.status.code);
  w.close(status);
  w.tag(16, I32);
  w.fixed32((ctx.traceFlags & 0xff) | HAS_IS_REMOTE | (parent?.isRemote ? IS_REMOTE : 0));
  w.close(at);
}

/** An InstrumentationScope message: tag, length and content (field 1 of ScopeSpans). */
function scopeMessage(w: Writer, scope: InstrumentationScope): void {
  w.tag(1, LEN);
  const sc = w.open();
  w.tag(1, LEN);
  w.string(scope.name);
  if (scope.version) {
    w.tag(2, LEN);
    w.string(scope.version);
  }
  const extra = scope as { attributes?: Attributes; droppedAttributesCount?: number };
  if (extra.attributes) attributes(w, extra.attributes, 3);
  if (extra.droppedAttributesCount) {
    w.tag(4, VARINT);
    w.varint(extra.droppedAttributesCount);
  }
  w.close(sc);
}

/** A Resource message: tag, length and content (field 1 of ResourceSpans). */
function resourceMessage(w: Writer, resource: Resource): void {
  w.tag(1, LEN);
  const res = w.open();
  attributes(w, resource.attributes, 1);
  w.tag(2, VARINT);
  w.byte(0);
  w.close(res);
}

/** The schema URL that ends a ScopeSpans or ResourceSpans message (field 3), if there is one. */
function schemaUrl(w: Writer, url: string | undefined): void {
  if (!url) return;
  w.tag(3, LEN);
  w.string(url);
}

/** A span as one entry of ScopeSpans.spans (field 2): what a batch holds per span. */
export function writeSpan(w: Writer, s: ReadableSpan): void {
  w.tag(2, LEN);
  span(w, s);
}

function scopeSpans(w: Writer, scope: InstrumentationScope, spans: ReadableSpan[]): void {
  const at = w.open();
  scopeMessage(w, scope);
  for (const s of spans) writeSpan(w, s);
  schemaUrl(w, scope.schemaUrl);
  w.close(at);
}

function resourceSpans(w: Writer, resource: Resource, scopes: Map<InstrumentationScope, ReadableSpan[]>): void {
  const at = w.open();
  resourceMessage(w, resource);
  for (const spans of scopes.values()) {
    w.tag(2, LEN);
    scopeSpans(w, (spans[0] as ReadableSpan).instrumentationScope, spans);
  }
  schemaUrl(w, resource.schemaUrl);
  w.close(at);
}

const writer = new Writer();

/** The ExportTraceServiceRequest for `spans`, grouped by resource and scope (by identity, as the library does). */
export function encodeSpans(spans: readonly ReadableSpan[]): Uint8Array {
  const groups = new Map<Resource, Map<InstrumentationScope, ReadableSpan[]>>();
  for (const s of spans) {
    let scopes = groups.get(s.resource);
    if (!scopes) groups.set(s.resource, (scopes = new Map<InstrumentationScope, ReadableSpan[]>()));
    const list = scopes.get(s.instrumentationScope);
    if (list) list.push(s);
    else scopes.set(s.instrumentationScope, [s]);
  }
  const w = writer;
  w.pos = 0;
  for (const [resource, scopes] of groups) {
    w.tag(1, LEN);
    resourceSpans(w, resource, scopes);
  }
  // A copy: the writer's buffer is reused by the next batch while this one may still be sending.
  return Buffer.from(w.buf.subarray(0, w.pos));
}

const bytesOf = (write: (w: Writer) => void): Buffer => {
  const w = new Writer(256);
  write(w);
  return Buffer.from(w.buf.subarray(0, w.pos));
};

/**
 * What an ExportTraceServiceRequest of one resource and one scope has around its spans, encoded
 * once: a batch of spans written one after another (`writeSpan`) from `spansStart` on becomes
 * the request by `seal`, which writes the lengths and these bytes in the room left in front and
 * appends the schema URLs, without moving the spans. The bytes are those of `encodeSpans` for
 * the same spans (test/fuzz/otlp-span-encoder).
 */
export class BatchFrame {
  private readonly resource: Buffer;
  private readonly scope: Buffer;
  private readonly scopeSuffix: Buffer;
  private readonly resourceSuffix: Buffer;
  /** Room a batch leaves in front of its spans: the frame's bytes and three lengths at most. */
  readonly spansStart: number;

  constructor(resource: Resource, scope: InstrumentationScope) {
    this.resource = bytesOf((w) => resourceMessage(w, resource));
    this.scope = bytesOf((w) => scopeMessage(w, scope));
    this.scopeSuffix = bytesOf((w) => schemaUrl(w, scope.schemaUrl));
    this.resourceSuffix = bytesOf((w) => schemaUrl(w, resource.schemaUrl));
    this.spansStart = 1 + 5 + this.resource.length + 1 + 5 + this.scope.length;
  }

  /** A writer for a new batch, `capacity` bytes to begin with, positioned where its spans start. */
  open(capacity: number): Writer {
    const w = new Writer(Math.max(capacity, this.spansStart + 1024));
    w.pos = this.spansStart;
    return w;
  }

  /** The request whose spans `w` holds (from spansStart to its position): a view of `w`'s buffer. */
  seal(w: Writer): Uint8Array {
    const spansLength = w.pos - this.spansStart;
    w.raw(this.scopeSuffix);
    w.raw(this.resourceSuffix);
    const scopeSpans = this.scope.length + spansLength + this.scopeSuffix.length;
    const resourceSpans = this.resource.length + 1 + varintSize(scopeSpans) + scopeSpans + this.resourceSuffix.length;
    const head = new Writer(this.spansStart);
    head.tag(1, LEN);
    head.varint(resourceSpans);
    head.raw(this.resource);
    head.tag(2, LEN);
    head.varint(scopeSpans);
    head.raw(this.scope);
    const from = this.spansStart - head.pos;
    head.buf.copy(w.buf, from, 0, head.pos);
    return w.buf.subarray(from, w.pos);
  }
}
