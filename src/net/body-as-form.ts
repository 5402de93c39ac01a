/**
 * A body of any type read as a form, as Bottle 0.12 reads every body whose Content-Type does not
 * start with `multipart/` (`BaseRequest.POST`, behind `request.forms`, `params` and `POST`: "We
 * default to application/x-www-form-urlencoded for everything that is not multipart"): split at
 * `&`, `+` a space, percent-decoded. A JSON document `{"note":"&_method=DELETE&"}` is the field
 * `_method` to it, and a text body `q=1%27%20UNION…` the field `q` holding `1' UNION…` (red team 27).
 *
 * Both readers here are one pass over the body, and build a string only for a piece that may
 * matter: a name that may be a method override, a name or value that decoding changes.
 */
import querystring from 'node:querystring';

const AMPERSAND = 0x26;
const EQUALS = 0x3d;
const PLUS = 0x2b;
const PERCENT = 0x25;

const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
const hexValue = (c: number) => (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57);

const SHORT = 32;

/** latin1Name for a short name: a string built piece by piece (a buffer per name cost more). */
function shortLatin1Name(body: Buffer, start: number, end: number): string {
  let out = '';
  for (let i = start; i < end; i++) {
    const c = body[i] as number;
    if (c === PERCENT && i + 2 < end && isHex(body[i + 1] as number) && isHex(body[i + 2] as number)) {
      out += String.fromCharCode((hexValue(body[i + 1] as number) << 4) | hexValue(body[i + 2] as number));
      i += 2;
    } else out += c === PLUS ? ' ' : String.fromCharCode(c);
  }
  return out;
}

/** A name as Bottle decodes it: Latin-1, `+` a space, every `%XX` one byte (a malformed escape kept as sent). */
function latin1Name(body: Buffer, start: number, end: number): string {
  let out: Buffer | undefined;
  let length = 0;
  for (let i = start; i < end; i++) {
    const c = body[i] as number;
    const escape = c === PERCENT && i + 2 < end && isHex(body[i + 1] as number) && isHex(body[i + 2] as number);
    if (out === undefined) {
      if (c !== PLUS && !escape) continue;
      if (end - start <= SHORT) return shortLatin1Name(body, start, end);
      // The first byte decoding changes: the rest is copied byte by byte (one buffer, however long).
      out = Buffer.allocUnsafe(end - start);
      length = body.copy(out, 0, start, i);
    }
    if (escape) {
      out[length++] = (hexValue(body[i + 1] as number) << 4) | hexValue(body[i + 2] as number);
      i += 2;
    } else out[length++] = c === PLUS ? 0x20 : c;
  }
  return out === undefined ? body.toString('latin1', start, end) : out.toString('latin1', 0, length);
}

const METHOD = 'method';
/** Every override name holds `method`; PHP's reading also decodes `%uXXXX`, which Latin-1 decoding leaves. */
const mayBeOverride = (name: string) => {
  const lower = name.toLowerCase();
  return lower.includes(METHOD) || lower.includes('%u');
};

/**
 * Whether a field of the body read as a form — a piece after `&` (or at the start) with an `=` —
 * has a name `test` accepts. Only a name that holds `method` (in any letter case) or an escape is
 * decoded and tested: every method-override name holds `method`, and no character Latin-1
 * decodes to folds to one of its letters. One pass; `method` is matched as the bytes go by.
 */
export function formNameHolds(body: Buffer, test: (name: string) => boolean): boolean {
  if (!body.includes(EQUALS)) return false;
  let start = 0;
  let named = false;
  let escaped = false;
  let matched = 0; // how much of `method` the name's last bytes spell
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as number;
    if (c === AMPERSAND) {
      start = i + 1;
      named = escaped = false;
      matched = 0;
    } else if (named) continue;
    else if (c === EQUALS) {
      named = true;
      if (matched === METHOD.length || escaped) {
        const name = latin1Name(body, start, i);
        if ((matched === METHOD.length || mayBeOverride(name)) && test(name)) return true;
      }
    } else if (c === PERCENT) escaped = true;
    else if (matched < METHOD.length) {
      const lower = c | 0x20;
      matched = lower === METHOD.charCodeAt(matched) ? matched + 1 : lower === 0x6d /* m */ ? 1 : 0;
    }
  }
  return false;
}

/** An escape (`%XX`) or a `+`: what decoding a form's text changes. */
const ESCAPE_OR_PLUS = /%[0-9A-Fa-f]{2}|\+/;

/**
 * `+` made a space. A long string in its UTF-8 bytes: replaceAll took ~1 s on 10 M `+`, this
 * loop a few ms (as form-pairs.ts does it).
 */
function spaced(s: string): string {
  if (s.length < 256) return s.replaceAll('+', ' ');
  const bytes = Buffer.from(s, 'utf8');
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === PLUS) bytes[i] = 0x20;
  return bytes.toString('utf8');
}

/** `s` decoded as the waf reads a form's names and values (form-pairs.ts): `+` a space, `%XX` as UTF-8, malformed escapes kept. */
const formDecoded = (s: string) => {
  const plain = s.includes('+') ? spaced(s) : s;
  return plain.includes('%') ? querystring.unescape(plain) : plain;
};

/**
 * The fields of `text` read as a form whose name or value decoding changes, flat (name, value,
 * …), decoded; empty when the text holds no `=` or nothing to decode. The rest of the text the waf
 * reads as it is already. The pieces are disjoint, so what is decoded is at most the text's
 * length. Undefined past `maxFields` such fields: more than the waf inspects.
 */
export function decodedFormFields(text: string, maxFields: number): string[] | undefined {
  const out: string[] = [];
  if (!text.includes('=') || !ESCAPE_OR_PLUS.test(text)) return out;
  const n = text.length;
  let start = 0;
  let eq = -1;
  let changes = false;
  const piece = (end: number) => {
    if (!changes || end === start) return true;
    if (out.length >= 2 * maxFields) return false;
    const nameEnd = eq === -1 ? end : eq;
    out.push(formDecoded(text.slice(start, nameEnd)), eq === -1 ? '' : formDecoded(text.slice(eq + 1, end)));
    return true;
  };
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === AMPERSAND) {
      if (!piece(i)) return undefined;
      start = i + 1;
      eq = -1;
      changes = false;
    } else if (c === EQUALS) {
      if (eq === -1) eq = i;
    } else if (c === PLUS) changes = true;
    else if (c === PERCENT && i + 2 < n && isHex(text.charCodeAt(i + 1)) && isHex(text.charCodeAt(i + 2))) changes = true;
  }
  return piece(n) ? out : undefined;
}
