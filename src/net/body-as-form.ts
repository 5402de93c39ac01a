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
import { formTextDecoded } from './form-pairs.js';
import { hexDigitValue, isHexDigit } from './hex-digits.js';

const AMPERSAND = 0x26;
const EQUALS = 0x3d;
const PLUS = 0x2b;
const PERCENT = 0x25;
const SEMICOLON = 0x3b;

const SHORT = 32;

/** latin1Name for a short name: a string built piece by piece (a buffer per name cost more). */
function shortLatin1Name(body: Buffer, start: number, end: number): string {
  let out = '';
  for (let i = start; i < end; i++) {
    const c = body[i] as number;
    if (c === PERCENT && i + 2 < end && isHexDigit(body[i + 1] as number) && isHexDigit(body[i + 2] as number)) {
      out += String.fromCharCode((hexDigitValue(body[i + 1] as number) << 4) | hexDigitValue(body[i + 2] as number));
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
    const escape = c === PERCENT && i + 2 < end && isHexDigit(body[i + 1] as number) && isHexDigit(body[i + 2] as number);
    if (out === undefined) {
      if (c !== PLUS && !escape) continue;
      if (end - start <= SHORT) return shortLatin1Name(body, start, end);
      // The first byte decoding changes: the rest is copied byte by byte (one buffer, however long).
      out = Buffer.allocUnsafe(end - start);
      length = body.copy(out, 0, start, i);
    }
    if (escape) {
      out[length++] = (hexDigitValue(body[i + 1] as number) << 4) | hexDigitValue(body[i + 2] as number);
      i += 2;
    } else out[length++] = c === PLUS ? 0x20 : c;
  }
  return out === undefined ? body.toString('latin1', start, end) : out.toString('latin1', 0, length);
}

const METHOD = 'method';

/**
 * How many names holding `method` (or `%u`) formNameHolds decodes and tests before it answers as if
 * one were an override: MAX_NAMES_TESTED, or one per BYTES_PER_NAME_TESTED bytes of a larger body.
 * A 10 MiB body of `method=&` is 1.3 M such names, each decoded and tested: ~0.4 s of event loop
 * (review rt27, F4); at one per 32 bytes, 328 k names, ~0.1 s. A flat count refused ordinary bulk
 * JSON: 12 000 access-log records (`"method":"GET"`, a URL with `?`, a user agent with `;`) or order
 * URLs with `&payment_method=…&shipping_method=` are as many pieces or more (second review rt27,
 * F1); a record is longer than 32 bytes a name.
 */
export const MAX_NAMES_TESTED = 10_000;
const BYTES_PER_NAME_TESTED = 32;

/** What formNameReading found: a name `test` accepts, or more names to test than are tested. */
export type FormNameFinding = 'found' | 'too many';

/**
 * One field's name as it goes by: how much of `method` its bytes, decoded as Bottle decodes them,
 * spell (every override name holds `method`, and no character Latin-1 decodes to folds to one of
 * its letters), and whether it holds a `%u` once decoded (PHP's reading also decodes `%uXXXX`).
 */
class NameScan {
  start = 0;
  named = false;
  matched = 0;
  percentU = false;
  /** Whether the last decoded character was a `%`. */
  percent = false;

  restart(start: number): void {
    this.start = start;
    this.named = this.percentU = this.percent = false;
    this.matched = 0;
  }

  /** The next character of the decoded name (a byte; `+` already a space). */
  add(c: number): void {
    const lower = c | 0x20;
    if (this.matched < METHOD.length)
      this.matched = lower === METHOD.charCodeAt(this.matched) ? this.matched + 1 : lower === 0x6d /* m */ ? 1 : 0;
    if (this.percent && lower === 0x75 /* u */) this.percentU = true;
    this.percent = c === PERCENT;
  }

  get mayBeOverride(): boolean {
    return this.matched === METHOD.length || this.percentU;
  }
}

/**
 * Whether a field of the body read as a form — a piece after `&` (or at the start) with an `=` —
 * has a name `test` accepts, as either Bottle reads it: 0.12.19 on splits at `&`, earlier ones at
 * `;` too (`qs.replace(';','&')`, removed for CVE-2020-28473), so both the name since the last `&`
 * and the one since the last `;` are read. Only a name that holds `method` (in any letter case) or
 * `%u` once decoded is decoded and tested; past MAX_NAMES_TESTED of them (or one per 32 bytes of a
 * larger body), 'too many' (fail closed).
 * One pass; the names' letters are decoded and matched as the bytes go by.
 */
export function formNameReading(body: Buffer, test: (name: string) => boolean): FormNameFinding | undefined {
  if (!body.includes(EQUALS)) return undefined;
  const amp = new NameScan(); // the name since the last `&`
  const semi = new NameScan(); // since the last `&` or `;`
  let tested = 0;
  const maxTested = Math.max(MAX_NAMES_TESTED, Math.floor(body.length / BYTES_PER_NAME_TESTED));
  const holds = (scan: NameScan, end: number) => {
    if (!scan.mayBeOverride) return undefined;
    if (++tested > maxTested) return 'too many';
    return test(latin1Name(body, scan.start, end)) ? 'found' : undefined;
  };
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as number;
    if (c === AMPERSAND) {
      amp.restart(i + 1);
      semi.restart(i + 1);
    } else if (c === SEMICOLON) {
      semi.restart(i + 1);
      if (!amp.named) amp.add(c); // a character of the name to Bottle 0.12.19 on
    } else if (semi.named)
      continue; // a value, to both readings
    else if (c === EQUALS) {
      semi.named = true;
      const found = holds(semi, i) ?? (!amp.named && amp.start !== semi.start ? holds(amp, i) : undefined);
      if (found) return found;
      amp.named = true;
    } else {
      let decoded = c === PLUS ? 0x20 : c;
      if (c === PERCENT && i + 2 < body.length && isHexDigit(body[i + 1] as number) && isHexDigit(body[i + 2] as number)) {
        decoded = (hexDigitValue(body[i + 1] as number) << 4) | hexDigitValue(body[i + 2] as number);
        i += 2;
      }
      semi.add(decoded);
      if (!amp.named) amp.add(decoded);
    }
  }
  return undefined;
}

/** formNameReading, found or not: a body of too many method-like names counts as holding an override. */
export const formNameHolds = (body: Buffer, test: (name: string) => boolean): boolean => formNameReading(body, test) !== undefined;

/** An escape (`%XX`) or a `+`: what decoding a form's text changes. */
const ESCAPE_OR_PLUS = /%[0-9A-Fa-f]{2}|\+/;

/**
 * The fields of `text` read as a form whose name or value decoding changes, flat (name, value,
 * …), decoded; empty when the text holds no `=` or nothing to decode. The rest of the text the waf
 * reads as it is already. Read as both Bottles read it: split at `&` (0.12.19 on), and, where a
 * `;` bounds a piece, at `;` too (before: `x=%27;q=1%27%20OR` is the field `q` to it, `x` holding
 * `';q=1' OR` to later ones). The pieces of each reading are disjoint, so what is decoded is at
 * most twice the text's length. Undefined past `maxFields` fields split at `&`: more than the waf
 * inspects. The `;` reading, for a Bottle older than 2021, has a budget of its own and is left out
 * past it rather than refused: code and SQL hold `x=y+1;` by the thousand (a 125 KB script was
 * 12 000 such pieces, 403 — second review rt27, F2).
 */
export function decodedFormFields(text: string, maxFields: number): string[] | undefined {
  const out: string[] = [];
  if (!text.includes('=') || !ESCAPE_OR_PLUS.test(text)) return out;
  if (!addDecodedPieces(text, out, maxFields, false)) return undefined;
  if (!text.includes(';')) return out;
  const semicolonPieces: string[] = [];
  return addDecodedPieces(text, semicolonPieces, maxFields, true) ? out.concat(semicolonPieces) : out;
}

/**
 * decodedFormFields' pieces split at `&`, or, with `semicolon`, those of the pieces split at `&`
 * and `;` that a `;` bounds (the others are the first reading's). False past `maxFields`.
 */
function addDecodedPieces(text: string, out: string[], maxFields: number, semicolon: boolean): boolean {
  const n = text.length;
  let start = 0;
  let eq = -1;
  let changes = false;
  let afterSemicolon = false;
  const piece = (end: number, atSemicolon: boolean) => {
    if (!changes || end === start || (semicolon && !afterSemicolon && !atSemicolon)) return true;
    if (out.length >= 2 * maxFields) return false;
    const nameEnd = eq === -1 ? end : eq;
    out.push(formTextDecoded(text.slice(start, nameEnd)), eq === -1 ? '' : formTextDecoded(text.slice(eq + 1, end)));
    return true;
  };
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === AMPERSAND || (semicolon && c === SEMICOLON)) {
      if (!piece(i, c === SEMICOLON)) return false;
      start = i + 1;
      eq = -1;
      changes = false;
      afterSemicolon = c === SEMICOLON;
    } else if (c === EQUALS) {
      if (eq === -1) eq = i;
    } else if (c === PLUS) changes = true;
    else if (c === PERCENT && i + 2 < n && isHexDigit(text.charCodeAt(i + 1)) && isHexDigit(text.charCodeAt(i + 2))) changes = true;
  }
  return piece(n, false);
}
