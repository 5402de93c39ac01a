/**
 * What a collector's `partial_success` says (OTLP: an export answered 200 whose items were only in
 * part accepted): how many it rejected, and its error message, cut and escaped for a log line.
 *
 * Read in bounded time whatever the answer: the library reads answers of up to 4 MiB, and decoding
 * one whole (then JSON.stringify for its no-op diag.warn) cost 11–24 ms of main thread per export.
 * - protobuf: the fields are walked without decoding (at most `MAX_FIELDS` of them), and only the
 *   message's first `MESSAGE_BYTES` are decoded;
 * - JSON: an answer up to `JSON_READ_BYTES` is parsed whole; past it (no collector's partial
 *   success is that long but for its message) only its first `JSON_READ_BYTES`, which proto3 JSON
 *   writers fill in field order: `{"partialSuccess":{"rejectedSpans":"N","errorMessage":"…`.
 */

export interface Rejection {
  /** Items the collector says it rejected (its int64, as a number; clamped by the caller to what was sent). */
  readonly rejected: number;
  /** Its error message: at most `MESSAGE_CHARS` characters, control characters escaped. */
  readonly message: string;
}

export const MESSAGE_CHARS = 256;
/** Enough UTF-8 for MESSAGE_CHARS characters. */
const MESSAGE_BYTES = MESSAGE_CHARS * 4;
/** Fields looked at per message level: a real answer has one or two. */
const MAX_FIELDS = 64;
export const JSON_READ_BYTES = 64 * 1024;

/**
 * The message as a log line may hold it: C0, DEL and C1 as \xNN, the bidirectional controls and
 * line separators as \u{NNNN} (as src/dev/console-printer.ts shows values), cut to MESSAGE_CHARS.
 * `whole`: how long the whole was, said when it was cut (or not all of it was decoded).
 */
function boundedMessage(text: string, whole?: string): string {
  const chars = Array.from(text.slice(0, MESSAGE_CHARS * 2));
  const shown = chars
    .slice(0, MESSAGE_CHARS)
    .join('')
    // eslint-disable-next-line no-control-regex -- control characters are what it escapes
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/[\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
  if (whole !== undefined) return `${shown}… (${whole})`;
  return chars.length > MESSAGE_CHARS ? `${shown}… (${text.length} characters)` : shown;
}

/** A varint at `pos`: its value (exact to 2^53) and the position after it; undefined if truncated or longer than 10 bytes. */
function varint(b: Uint8Array, pos: number): [number, number] | undefined {
  let value = 0;
  for (let i = 0; i < 10 && pos < b.length; i++) {
    const byte = b[pos++] as number;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return [value, pos];
  }
  return undefined;
}

/** Calls `field(number, wireType, start, end)` for the fields of b[from, to); false if malformed. */
function walk(b: Uint8Array, from: number, to: number, field: (n: number, wire: number, start: number, end: number) => void): boolean {
  let pos = from;
  for (let seen = 0; pos < to && seen < MAX_FIELDS; seen++) {
    const tag = varint(b, pos);
    if (tag === undefined) return false;
    const [key, at] = tag;
    const wire = key % 8;
    let end: number;
    let start = at;
    if (wire === 0) {
      const v = varint(b, at);
      if (v === undefined) return false;
      end = v[1];
    } else if (wire === 1) end = at + 8;
    else if (wire === 5) end = at + 4;
    else if (wire === 2) {
      const len = varint(b, at);
      if (len === undefined) return false;
      start = len[1];
      end = start + len[0];
    } else return false;
    if (end > to) return false;
    field(Math.floor(key / 8), wire, start, end);
    pos = end;
  }
  return true;
}

/** Export{Trace,Logs,Metrics}ServiceResponse { partial_success = 1 { int64 rejected_* = 1; string error_message = 2 } }. */
export function partialSuccessOfProtobuf(b: Uint8Array): Rejection | undefined {
  let inner: [number, number] | undefined;
  if (!walk(b, 0, b.length, (n, wire, start, end) => n === 1 && wire === 2 && (inner = [start, end]))) return undefined;
  if (inner === undefined) return undefined;
  let rejected = 0;
  let message: [number, number] | undefined;
  const ok = walk(b, inner[0], inner[1], (n, wire, start, end) => {
    if (n === 1 && wire === 0) rejected = (varint(b, start) as [number, number])[0];
    else if (n === 2 && wire === 2) message = [start, end];
  });
  if (!ok) return undefined;
  const [from, to] = message ?? [0, 0];
  const text = Buffer.from(b.buffer, b.byteOffset + from, Math.min(to - from, MESSAGE_BYTES)).toString('utf8');
  // Its length in bytes when not all was decoded (counting its characters would decode it).
  return { rejected, message: boundedMessage(text, to - from > MESSAGE_BYTES ? `${to - from} bytes` : undefined) };
}

const REJECTED_KEYS = [
  'rejectedSpans',
  'rejectedLogRecords',
  'rejectedDataPoints',
  'rejected_spans',
  'rejected_log_records',
  'rejected_data_points',
];

/** A proto3 JSON int64: a number or a string of digits. */
function count(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,20}$/.test(v) ? Number(v) : 0;
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/**
 * The start of an answer past JSON_READ_BYTES, in proto3 JSON's field order; the message's first
 * characters, whole escapes only. Anchored, and the alternatives of the repeated group start
 * differently: one pass over at most the first few hundred characters.
 */
const LONG_JSON =
  /^\s*\{\s*"partialSuccess"\s*:\s*\{\s*"rejected(?:Spans|LogRecords|DataPoints)"\s*:\s*"?(\d{1,20})"?\s*(?:,\s*"errorMessage"\s*:\s*"((?:[^"\\]|\\u[0-9a-fA-F]{4}|\\[^u]){0,256}))?/;

/** A JSON string's first characters (whole escapes: LONG_JSON takes no part of one), escapes undone; as written if they are no JSON. */
function jsonString(raw: string): string {
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}

export function partialSuccessOfJson(b: Uint8Array): Rejection | undefined {
  if (b.length > JSON_READ_BYTES) {
    const m = LONG_JSON.exec(Buffer.from(b.buffer, b.byteOffset, JSON_READ_BYTES).toString('utf8'));
    if (m === null) return undefined;
    const text = m[2] === undefined ? '' : jsonString(m[2]);
    return { rejected: count(m[1]), message: boundedMessage(text, m[2] === undefined ? undefined : `an answer of ${b.length} bytes`) };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const ps = (doc as Record<string, unknown>).partialSuccess ?? (doc as Record<string, unknown>).partial_success;
  if (typeof ps !== 'object' || ps === null) return undefined;
  const fields = ps as Record<string, unknown>;
  const key = REJECTED_KEYS.find((k) => fields[k] !== undefined);
  const text = fields.errorMessage ?? fields.error_message;
  const message = typeof text === 'string' ? text : '';
  return { rejected: key === undefined ? 0 : count(fields[key]), message: boundedMessage(message) };
}
