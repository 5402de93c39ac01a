/**
 * The values a backend reads out of a form or JSON body, decoded as it decodes them — what it may
 * store as a file of its own, and what the malware scan therefore scans one by one besides the
 * body as sent: a form's values with `+` and `%XX` undone (Go's r.FormValue, PHP, Rack; `%uXXXX`
 * too, as System.Web reads it; `&#88;` as `X` too, as qs reads it with interpretNumericEntities),
 * a JSON document's string values with their escapes undone (encoding/json, JSON.parse). Read as JSON whenever the waf reads the body as JSON: a JSON type,
 * an untyped body, and a form or text body that opens a JSON object or array (a Go handler decodes
 * the body whatever its Content-Type says). And a JSON string that is base64, or an array of byte
 * numbers, also as the bytes it spells (json-binary.ts): encoding/json decodes either into a
 * `[]byte` field by itself, which is how a JSON API takes a file. Those decoded values have an
 * allowance of their own, `decodedLimit`: counted against `limit` they halved what an ordinary
 * document of ids could hold (review rt29/2 F2). Past it the body is `excess` too, as past
 * `limit`: dropping the decoded values past it would let a sender put decoys before the file.
 *
 * A form's values are decoded to bytes, as Go, PHP and Rack keep them (`%FF` is the byte 0xFF, not
 * U+FFFD): a binary sent percent-encoded is scanned as the file the backend would write. A JSON
 * string is scanned as the UTF-8 a backend writes of it.
 *
 * Each distinct value once, empty ones left out: the same bytes get the same verdict, and an empty
 * file holds nothing to find. Each is decoded only when asked for (its scan's turn): the values of
 * a body are not all held as bytes at once besides the body. Bounded: at most `limit` distinct values, and at most VISITS_PER_VALUE
 * times as many non-empty values read, duplicates included — past either the body is `excess`
 * (the scan refuses it as past max_files). A 10 MiB form of `&` or of one pair repeated, or a JSON
 * array of 2.6 M equal strings, held the event loop 3–9 s when every pair was decoded and kept.
 */
import querystring from 'node:querystring';
import { jsonStringLiterals, parseJsonBody, type BufferedBody } from '../net/json-body.js';
import { FORM_MEDIA_TYPE, isJsonMediaType, opensJsonDocument } from '../net/media-type.js';
import { hasPercentU, percentUDecoded } from '../net/percent-u.js';
import { mayHoldNumericReference, numericReferencesDecoded } from '../net/numeric-references.js';
import { base64Decoded, base64Start, byteArrayDecoded, byteArrayKey, byteArraysIn, isByteArray } from './json-binary.js';

/** Node's own (documented, public) form decoder to bytes, which @types/node does not declare (as in percent-decoded.ts). */
const { unescapeBuffer } = querystring as unknown as { unescapeBuffer: (this: void, s: string, decodeSpaces: boolean) => Buffer };

/** Non-empty values read per distinct value allowed, duplicates included, before the body counts as excess. */
const VISITS_PER_VALUE = 64;

export interface BodyFieldValues {
  /** [where, value]: the distinct non-empty values, decoded as a backend decodes them when called. */
  readonly values: [string, () => Buffer][];
  /** More distinct values than the limit, or more values read than it allows: not all were taken. */
  readonly excess: boolean;
}

/**
 * The values of a body of type `mime`, at most `limit` of them as sent (or as a form decoder reads
 * them) and at most `decodedLimit` more decoded from base64 and byte arrays. `request`: the body's
 * JSON parse is left on it for the stages after (jsonBodyOf), which read the same bytes.
 */
export function bodyFieldValues(
  mime: string,
  body: Buffer,
  request: BufferedBody,
  limit: number,
  decodedLimit: number = limit,
): BodyFieldValues {
  const values: [string, () => Buffer][] = [];
  const seen = new Set<string>();
  let visits = 0;
  let plain = 0;
  let decoded = 0;
  let excess = false;
  /** Whether the last value taken was seen for the first time. */
  let fresh = false;
  /**
   * Whether to go on: false once past a bound. `key`: the value as sent, which decodes one way
   * only; `decode` gives its bytes, never empty (the callers leave empty values out). `array`: a
   * byte array's reading, counted against decodedLimit.
   */
  const take = (key: string, name: string, decode: () => Buffer, array = false): boolean => {
    fresh = false;
    if (++visits > limit * VISITS_PER_VALUE) return !(excess = true);
    if (seen.has(key)) return true;
    seen.add(key);
    fresh = true;
    if (array ? decoded++ >= decodedLimit : plain++ >= limit) return !(excess = true);
    values.push([name, decode]);
    return true;
  };
  /**
   * The base64 reading of a string just taken fresh (so seen once, by its string's key), counted
   * against decodedLimit; not a value read again (VISITS_PER_VALUE).
   */
  const takeReading = (name: string, decode: () => Buffer): boolean => {
    if (decoded++ >= decodedLimit) return !(excess = true);
    values.push([name, decode]);
    return true;
  };
  if (mime === FORM_MEDIA_TYPE || mime === '') {
    // Byte for byte: latin1 maps each byte to one character and unescapeBuffer back. No split:
    // a body of `&` would be millions of empty strings.
    const text = body.toString('latin1');
    const references = mayHoldNumericReference(body);
    // One pass: each pair's first "=" found as the pair is walked (an indexOf("=") from each pair
    // scanned the rest of the body: quadratic on `&` × n).
    let start = 0;
    let equals = -1;
    for (let i = 0; i <= text.length; i++) {
      const c = i === text.length ? 0x26 : text.charCodeAt(i);
      if (c === 0x3d /* = */ && equals === -1) equals = i;
      if (c !== 0x26 /* & */) continue;
      const valueStart = equals === -1 ? i : equals + 1;
      if (valueStart < i) {
        const raw = text.slice(valueStart, i);
        const nameEnd = equals;
        const name = unescapeBuffer(text.slice(start, nameEnd), true).toString('utf8');
        const decoded = () => (ENCODED.test(raw) ? unescapeBuffer(raw, true) : Buffer.from(raw, 'latin1'));
        if (!take(raw, name, decoded)) break;
        // System.Web's reading too, a value of its own.
        if (hasPercentU(raw) && !take(`%u:${raw}`, name, () => Buffer.from(percentUDecoded(decoded().toString('utf8')), 'utf8'))) break;
        // And qs's with `&#88;` read as `X` (numeric-references.ts), when the value may hold one.
        if (references && mayHoldNumericReference(raw)) {
          const referenced = numericReferencesDecoded(decoded().toString('utf8'));
          if (referenced !== undefined && referenced !== '' && !take(`&#:${raw}`, name, () => Buffer.from(referenced, 'utf8'))) break;
        }
      }
      start = i + 1;
      equals = -1;
    }
  }
  if (excess || !(isJsonMediaType(mime) || mime === '' || opensJsonDocument(body))) return { values, excess };
  let json = request.bodyJson;
  if (json === undefined) request.bodyJson = json = parseJsonBody(body) ?? false;
  const utf8 = (s: string) => () => Buffer.from(s, 'utf8');
  /** A non-empty string `s` under `where`: its text, and the bytes it spells as base64 (a `[]byte` field). Whether to go on. */
  const string = (where: string, s: string): boolean => {
    if (!take(`j:${s}`, where, utf8(s))) return false;
    if (!fresh) return true;
    const from = base64Start(s);
    return from === -1 || takeReading(where, () => base64Decoded(s, from));
  };
  if (json === false) {
    // Not interoperable JSON (a name twice, a BOM, bytes not UTF-8, data after the document):
    // every string literal unescaped, names and values alike, whichever a backend keeps; and
    // every byte array, read lexically.
    const text = body.toString('utf8');
    for (const literal of jsonStringLiterals(text)) {
      if (literal !== '' && !string('a JSON string', literal)) return { values, excess };
    }
    for (const bytes of byteArraysIn(text)) {
      if (!take(`a:${byteArrayKey(bytes)}`, 'a JSON array', () => bytes, true)) break;
    }
    return { values, excess };
  }
  // Without recursion (documents may nest deep), and without a copy of an array's or object's
  // entries: a string is named by the member whose value holds it (`tags` for each of `tags[…]`).
  const stack: { where: string; items: readonly unknown[]; names?: readonly string[]; next: number }[] = [];
  /** Whether to go on. An array of byte numbers is taken as the bytes it spells; nothing in it to walk. */
  const enter = (where: string, value: unknown): boolean => {
    if (Array.isArray(value)) {
      // A large one keyed by a digest: decoded only at its scan's turn.
      if (isByteArray(value)) return take(`a:${byteArrayKey(value)}`, where, () => byteArrayDecoded(value), true);
      stack.push({ where, items: value, next: 0 });
    } else if (typeof value === 'object' && value !== null)
      stack.push({ where, items: Object.values(value), names: Object.keys(value), next: 0 });
    return true;
  };
  if (typeof json.value === 'string') {
    if (json.value !== '') string('/', json.value);
  } else enter('/', json.value);
  while (stack.length > 0 && !excess) {
    const top = stack[stack.length - 1] as (typeof stack)[number];
    if (top.next >= top.items.length) {
      stack.pop();
      continue;
    }
    const i = top.next++;
    const item = top.items[i];
    const where = top.names ? (top.names[i] as string) : top.where;
    if (typeof item === 'string') {
      if (item !== '' && !string(where, item)) break;
    } else if (!enter(where, item)) break;
  }
  return { values, excess };
}

/** A value a form decoder changes: `%XX`, `%uXXXX` or `+`. */
const ENCODED = /[%+]/;
