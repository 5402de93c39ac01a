/**
 * An `application/x-www-form-urlencoded` body read once per request, whichever stage asks first
 * (the method-override check, validation, the waf), and kept on the request (`formPairsOf`): the
 * fields exactly as `new URLSearchParams(body.toString('utf8'))` reads them, which every stage here
 * read the form with, each on its own.
 *
 * Not URLSearchParams itself: Node's reader builds each name and value by appending to a string,
 * one `+` at a time, so 4.5 M `+` were 4.5 M string pieces that every scavenge copied while they
 * lived — ~0.8 s of garbage collection per reading, several readings a request (red team: 2–3.6 s
 * of event loop for one 10 MiB form). This is the same reader (Node 20's `parseParams`, its quirks
 * included: one leading `?` dropped; a name or value decoded by `querystring.unescape` only when it
 * holds a `%XX`, which falls back to a byte-wise decoding when `decodeURIComponent` refuses it)
 * with each name and value cut out whole, its `+` replaced in one call. test/unit/net/form-pairs
 * holds it to URLSearchParams on generated forms.
 */
import { isUtf8 } from 'node:buffer';
import querystring from 'node:querystring';
import type { BufferedBody } from './json-body.js';
import { hexDigitValue, isHexDigit } from './hex-digits.js';

/** Node's own (untyped in @types/node): the fallback of `querystring.unescape`. */
const { unescapeBuffer } = querystring as unknown as { unescapeBuffer: (s: string) => Buffer };

/** A form's fields, flat as URLSearchParams keeps them: name, value, name, value, … */
export type FormPairs = readonly string[];

const AMPERSAND = 0x26;
const EQUALS = 0x3d;
const PLUS = 0x2b;
const PERCENT = 0x25;

/**
 * `+` made a space. A string in its UTF-8 bytes (exact: the text is well-formed, and both are one
 * byte): replaceAll and a regex took ~1 s on 10 M `+`, this loop ~30 ms; and so on short strings
 * too: 164 k values of 61 `+` (an untyped 10 MiB body, one field in 64 bytes) took replaceAll
 * 1.2–1.9 s inside the reading, this ~50 ms.
 */
function spaced(s: string): string {
  if (s.length < 16) return s.replaceAll('+', ' ');
  const bytes = Buffer.from(s, 'utf8');
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === PLUS) bytes[i] = 0x20;
  return bytes.toString('utf8');
}

/**
 * `querystring.unescape(s)` without its throw: decodeURIComponent, or, when that throws (a `%` that
 * starts no escape, escapes that are not UTF-8: `%E9`), `unescapeBuffer(s)` read as UTF-8 (which
 * keeps only the low byte of a character past ASCII). A throw per value cost ~7 µs: 164 k values
 * of `%E9…` (an untyped 10 MiB body, one field in 64 bytes) took ~1.1 s, ~0.1 s so.
 * decodeURIComponent succeeds exactly when every `%` starts an escape and the text with its escapes
 * decoded is UTF-8 (`s` is: a literal character is a whole sequence, so an escaped byte next to one
 * cannot complete it); its answer is then that text.
 */
function unescaped(s: string): string {
  const bytes = Buffer.from(s, 'utf8');
  const ascii = bytes.length === s.length;
  let length = 0;
  let whole = true;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    if (c === PERCENT) {
      if (i + 2 < bytes.length && isHexDigit(bytes[i + 1] as number) && isHexDigit(bytes[i + 2] as number)) {
        bytes[length++] = (hexDigitValue(bytes[i + 1] as number) << 4) | hexDigitValue(bytes[i + 2] as number);
        i += 2;
        continue;
      }
      whole = false;
    }
    bytes[length++] = c;
  }
  const out = bytes.subarray(0, length);
  // An ASCII text decodes the same either way; otherwise the fallback's own reading.
  return ascii || (whole && isUtf8(out)) ? out.toString('utf8') : unescapeBuffer(s).toString('utf8');
}

/** A piece of form text as the reader decodes a name or value: `+` a space, `%XX` as UTF-8, malformed escapes kept. */
export function formTextDecoded(s: string): string {
  const plain = s.includes('+') ? spaced(s) : s;
  return plain.includes('%') ? unescaped(plain) : plain;
}

/** One name or value: `+` as a space, and percent-decoded as Node's reader decodes it when it holds an escape. */
function decoded(text: string, start: number, end: number, plus: boolean, encoded: boolean): string {
  const s = plus ? spaced(text.slice(start, end)) : text.slice(start, end);
  return encoded ? unescaped(s) : s;
}
/** `text`'s fields as `new URLSearchParams(text)` reads them (text: a body decoded as UTF-8, so well-formed). */
export function formPairs(text: string): string[] {
  const out: string[] = [];
  const n = text.length;
  let i = text.charCodeAt(0) === 0x3f /* ? */ ? 1 : 0;
  let start = i;
  let named = false;
  let plus = false;
  let encoded = false;
  // Node's test for an escape worth decoding: `%` and two hex digits, a `+` between them not counted.
  let check = 0;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === AMPERSAND) {
      if (!named && start === i) {
        start = i + 1; // an empty pair (`&&`) is no field
        continue;
      }
      out.push(decoded(text, start, i, plus, encoded));
      if (!named) out.push('');
      start = i + 1;
      named = plus = encoded = false;
      check = 0;
    } else if (c === EQUALS && !named) {
      out.push(decoded(text, start, i, plus, encoded));
      start = i + 1;
      named = true;
      plus = encoded = false;
      check = 0;
    } else if (c === PLUS) plus = true;
    else if (!encoded) {
      if (c === PERCENT) check = 1;
      else if (check > 0) {
        if (!isHexDigit(c)) check = 0;
        else if (++check === 3) encoded = true;
      }
    }
  }
  if (named || start < n) {
    out.push(decoded(text, start, n, plus, encoded));
    if (!named) out.push('');
  }
  return out;
}

/** The request's form body read as fields by the first stage that asks (undefined without a body). */
export function formPairsOf(request: BufferedBody): FormPairs | undefined {
  if (request.bodyForm === undefined && request.body !== undefined) request.bodyForm = formPairs(request.body.toString('utf8'));
  return request.bodyForm;
}
