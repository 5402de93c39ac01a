/**
 * A request body parsed as JSON once per request, whichever body stage asks first (validation and
 * the waf both read it), and kept on the request itself (`jsonBodyOf`). Neither caller mutates the
 * value (ajv validates JSON bodies without coercion or defaults).
 *
 * Not in a WeakMap keyed by the body: in V8 a scavenge keeps the entries of a WeakMap that lives in
 * the old generation, so every request's body and parsed value outlived its request and was
 * promoted, and only a mark-compact freed them (docs/history/performance.md, "A WeakMap cache";
 * bench/request-state-scavenge.js).
 *
 * Documents that parsers read differently are not JSON here (RFC 8259 §4, §6, §8.1; RFC 7493):
 * bytes that are not UTF-8 (decoding would replace them, the backend would see the originals),
 * numbers beyond a double (`1e999999` parses as Infinity, which passes `type: integer`), and
 * duplicate member names (this parser keeps the last, many backends the first).
 */
import { escapesUndone, yamlEscapesUndone } from './string-escapes.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class NotInteroperable extends Error {}

function finiteOnly(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new NotInteroperable('number out of range');
  return value;
}

export interface ParsedJson {
  readonly value: unknown;
  /**
   * Arrays and objects nest deeper than MAX_JSON_DEPTH: parsed (JSON.parse and membersOf do not
   * recurse), but too deep for a recursive reader such as ajv, which overflows the stack on it.
   */
  readonly tooDeep: boolean;
}

/**
 * The deepest nesting of arrays and objects a JSON document is read with by validation: the
 * ceiling of threats.waf.max_depth, and about where Python's json stops (its recursion limit).
 * ajv validating a recursive schema ($ref to itself) overflowed the stack near 6 000 levels.
 */
export const MAX_JSON_DEPTH = 1000;

/** A buffered request body and what `jsonBodyOf` and `formPairsOf` made of it (RequestContext is one). */
export interface BufferedBody {
  readonly body?: Buffer | undefined;
  /** Unset until a stage asks; `false` when the body is not valid (interoperable) JSON. */
  bodyJson?: ParsedJson | false | undefined;
  /** The body's form fields, flat (name, value, …): unset until a stage asks (form-pairs.ts). */
  bodyForm?: readonly string[] | undefined;
}

/** The request's body as JSON, parsed by the first stage that asks; undefined without a body or when it is not valid JSON. */
export function jsonBodyOf(request: BufferedBody): ParsedJson | undefined {
  let json = request.bodyJson;
  if (json === undefined) {
    if (request.body === undefined) return undefined;
    request.bodyJson = json = parseJsonBody(request.body) ?? false;
  }
  return json || undefined;
}

/** The parsed body, or undefined when it is not valid (interoperable) JSON. */
export function parseJsonBody(body: Buffer): ParsedJson | undefined {
  try {
    const text = utf8.decode(body);
    const scan = scanText(text);
    // A reviver takes JSON.parse off its fast path: used only when a number could overflow.
    const value = ((scan & MAYBE_OVERFLOW) !== 0 ? JSON.parse(text, finiteOnly) : JSON.parse(text)) as unknown;
    return namesIn(scan) !== membersOf(value) ? undefined : { value, tooDeep: (scan & TOO_DEEP) !== 0 };
  } catch {
    return undefined;
  }
}

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/**
 * Whether an object of `text` (valid JSON) names a member twice, given `value`, what JSON.parse made
 * of it: the text names more members than the parsed objects hold, since a repeated name (however
 * spelled: `\u0072ole` is `role`) overwrote one. Two counts, no name compared: the scan of the
 * text allocates nothing (a Set per object and a slice per name cost as much as the parse itself).
 */
export function hasDuplicateMembers(text: string, value: unknown): boolean {
  return namesIn(scanText(text)) !== membersOf(value);
}

/** The bit of scanText's result saying that a number may overflow a double. */
const MAYBE_OVERFLOW = 1;
/** The bit of scanText's result saying that arrays and objects nest deeper than MAX_JSON_DEPTH. */
const TOO_DEEP = 2;
/** The member names scanText counted (its result without the two bits above). */
const namesIn = (scan: number): number => scan >>> 2;

/** Whether JSON `text` nests arrays and objects deeper than MAX_JSON_DEPTH (one pass, no parse). */
export function nestsTooDeep(text: string): boolean {
  return (scanText(text) & TOO_DEEP) !== 0;
}
/** A run of digits this long overflows a double even with a one-digit exponent (10^(digits + 9) > 1.8e308). */
const OVERFLOW_DIGITS = 300;

/**
 * One pass over the text: the strings followed by a colon, member names (in valid JSON a string
 * value never is), times four, plus MAYBE_OVERFLOW when a number outside the strings has an
 * exponent of two or more digits or a run of OVERFLOW_DIGITS digits: every number beyond a double
 * does, plus TOO_DEEP when more than MAX_JSON_DEPTH arrays and objects are open at once. Bounded
 * by the length, so text that is not JSON (an unclosed string) still ends the scan.
 */
function scanText(text: string): number {
  let names = 0;
  let overflow = 0;
  let digits = 0;
  let depth = 0;
  let tooDeep = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      digits = 0;
      let j = i + 1;
      while (j < n && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      let k = j + 1;
      while (isSpace(text.charCodeAt(k))) k++;
      if (text.charCodeAt(k) === 0x3a /* : */) names++;
      i = j;
    } else if (isDigit(c)) {
      if (++digits >= OVERFLOW_DIGITS) overflow = MAYBE_OVERFLOW;
    } else {
      digits = 0;
      if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
        if (++depth > MAX_JSON_DEPTH) tooDeep = TOO_DEEP;
      } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
      else if (c === 0x65 /* e */ || c === 0x45 /* E */) {
        let k = i + 1;
        const sign = text.charCodeAt(k);
        if (sign === 0x2b /* + */ || sign === 0x2d /* - */) k++;
        if (isDigit(text.charCodeAt(k)) && isDigit(text.charCodeAt(k + 1))) overflow = MAYBE_OVERFLOW;
      }
    }
  }
  return names * 4 + tooDeep + overflow;
}

/** Own members of every object in a parsed document, without recursion (documents may nest deep). */
function membersOf(value: unknown): number {
  let members = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const v = pending.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (const item of v) if (typeof item === 'object' && item !== null) pending.push(item);
      continue;
    }
    // for…in: JSON.parse's objects have only own, enumerable members, and no key array is made.
    for (const name in v) {
      members++;
      const item = (v as Record<string, unknown>)[name];
      if (typeof item === 'object' && item !== null) pending.push(item);
    }
  }
  return members;
}

/**
 * Every string literal of a body that is not interoperable JSON (a leading BOM, which Express's
 * body parser drops; a member named twice, where parsers differ on which value counts; bytes that
 * are not UTF-8; Json.NET's and JSON5's single-quoted strings and comments, which ASP.NET with
 * Newtonsoft.Json reads), each with its escapes undone: keys and values alike, whichever a
 * backend keeps; and the literals of text formats with such escapes (GraphQL, YAML, NDJSON). The
 * waf inspects these besides the text as it is, in which `\u0027` would hide a quote.
 */
export function jsonStringLiterals(text: string): string[] {
  const strings: string[] = [];
  // Double- and single-quoted literals (Json.NET and JSON5 accept single quotes), read in one pass.
  // A regex (/"(?:[^"\\]|\\[^])*"|'…'/g) read the same, but an unterminated literal sent it to the
  // end of the text from every later quote: 100 KB of `\"` held the event loop 6.5 s. Once a
  // literal of one kind runs off the end, every later one of that kind does too (escapes pair the
  // same way from there), so each kind fails at most once and the pass stays linear.
  let openDouble = true;
  let openSingle = true;
  for (let i = 0; i < text.length; i++) {
    const quote = text.charCodeAt(i);
    if (!(quote === DOUBLE && openDouble) && !(quote === SINGLE && openSingle)) continue;
    const end = closingQuote(text, i + 1, quote);
    if (end === -1) {
      if (quote === DOUBLE) openDouble = false;
      else openSingle = false;
      continue;
    }
    // Its escapes undone (string-escapes.ts), as YAML reads them too when that differs.
    const content = text.slice(i + 1, end);
    const undone = escapesUndone(content);
    strings.push(undone);
    const yaml = yamlEscapesUndone(content);
    if (yaml !== undefined && yaml !== undone) strings.push(yaml);
    i = end;
  }
  return strings;
}

const DOUBLE = 0x22;
const SINGLE = 0x27;
const BACKSLASH = 0x5c;

/** Where the literal opened before `from` closes (a backslash escapes any character), or -1. */
function closingQuote(text: string, from: number, quote: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === quote) return i;
    if (c === BACKSLASH) i++;
  }
  return -1;
}
