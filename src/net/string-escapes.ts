/**
 * A string's backslash escapes undone as the readers a backend hands it to undo them: JSON's own,
 * and those of the lenient JSON readers and of the languages whose text travels in a body or in a
 * JSON string (a GraphQL query in `{"query": …}`). Read as sent, `\u{3C}script>` hides a tag.
 *
 * Two readings, where they differ:
 * - escapesUndone: JSON, JSON5 and Json.NET (`\x27`, `\'`, any other character standing for itself),
 *   JavaScript and GraphQL (`\u{3C}`: ES2015, the October 2021 GraphQL spec, graphql-js 16), and a
 *   backslash before a line break dropped with the break (a JSON5 and JavaScript line continuation);
 * - yamlEscapesUndone: YAML's double-quoted scalars (YAML 1.2 §5.7, PyYAML): `\U0000003C` (eight hex
 *   digits), `\N \_ \L \P` (U+0085, U+00A0, U+2028, U+2029), `\e \a`, and an escaped line break,
 *   dropped with the next line's leading white space. JSON5 reads `\N` as `N`: both are inspected.
 */
import { createCodeUnitBuilder, type CodeUnitBuilder } from './code-unit-builder.js';

/** What makes the YAML reading differ: a YAML-only escape, or an escaped line break before white space or NEL. */
const YAML_ONLY = /\\(?:U[0-9A-Fa-f]{8}|[N_LPea]|(?:\r\n|[\n\r\u2028\u2029])[ \t]|\u0085)/;

const SINGLE_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '0': '\0' };
const YAML_ESCAPES: Record<string, string> = {
  ...SINGLE_ESCAPES,
  a: '\x07',
  e: '\x1b',
  N: '\u0085',
  _: '\u00a0',
  L: '\u2028',
  P: '\u2029',
};

/** The escapes above by the letter's code (-1: none; `\0` is one), for the one-pass reading. */
const lettersOf = (escapes: Record<string, string>) => {
  const units = new Int32Array(0x80).fill(-1);
  for (const [letter, char] of Object.entries(escapes)) units[letter.charCodeAt(0)] = char.charCodeAt(0);
  return units;
};
const LENIENT_LETTERS = lettersOf(SINGLE_ESCAPES);
const YAML_LETTERS = lettersOf(YAML_ESCAPES);

/** The character a code point names, or undefined past Unicode (the reader refuses the text). */
function codePoint(hex: string): string | undefined {
  const cp = parseInt(hex, 16);
  return cp <= 0x10ffff ? String.fromCodePoint(cp) : undefined;
}

const CR = 0x0d;
const LF = 0x0a;
const NEL = 0x85;

/** A hex digit's value, or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/** The value of the `count` hex digits at `from`, or -1 when they are not all there. */
function hexValue(text: string, from: number, count: number): number {
  if (from + count > text.length) return -1;
  let value = 0;
  for (let i = from; i < from + count; i++) {
    const digit = hexDigit(text.charCodeAt(i));
    if (digit === -1) return -1;
    value = value * 16 + digit;
  }
  return value;
}

const isLineBreak = (c: number) => c === LF || c === CR || c === NEL || c === 0x2028 || c === 0x2029;

/**
 * `text` with every escape undone, the lenient way or YAML's (they differ in `\U`, line breaks
 * and letters). One pass, in the order of the alternatives of the regular expression it replaced
 * (`\\(?:u\{(hex+)\}|u(hex{4})|x(hex{2})|U(hex{8})|(\r\n|[\n\r\u0085\u2028\u2029])([ \t]*)|([^]))`,
 * kept in test/unit/net/string-escapes.test.ts to hold this to it): a replace with a callback per
 * escape held the event loop ~2 s on a 9 MiB value of `\\`.
 */
function undone(text: string, yaml: boolean): string {
  const out = createCodeUnitBuilder(text.length);
  let copied = 0;
  for (let i = text.indexOf('\\'); i !== -1 && i < text.length - 1; i = text.indexOf('\\', copied)) {
    out.run(text, copied, i);
    copied = undoEscape(text, i, yaml, out);
  }
  out.run(text, copied, text.length);
  return out.built();
}

/** The escape at `at` (a backslash with a character after it) undone into `out`; where it ends. */
function undoEscape(text: string, at: number, yaml: boolean, out: CodeUnitBuilder): number {
  const c = text.charCodeAt(at + 1);
  if (c === 0x75 /* u */ && text.charCodeAt(at + 2) === 0x7b /* { */) {
    let close = at + 3;
    while (hexDigit(text.charCodeAt(close)) !== -1) close++;
    if (close > at + 3 && text.charCodeAt(close) === 0x7d /* } */) {
      const escape = text.slice(at, close + 1);
      out.text(codePoint(text.slice(at + 3, close)) ?? escape);
      return close + 1;
    }
  }
  const width = c === 0x75 /* u */ ? 4 : c === 0x78 /* x */ ? 2 : c === 0x55 /* U */ ? 8 : 0;
  const value = width === 0 ? -1 : hexValue(text, at + 2, width);
  if (value !== -1 && width !== 8) {
    out.unit(value);
    return at + 2 + width;
  }
  if (value !== -1) {
    const end = at + 10;
    if (!yaml) out.run(text, at + 1, end);
    else out.text(codePoint(text.slice(at + 2, end)) ?? text.slice(at, end));
    return end;
  }
  if (isLineBreak(c)) {
    const breakEnd = c === CR && text.charCodeAt(at + 2) === LF ? at + 3 : at + 2;
    let end = breakEnd;
    while (text.charCodeAt(end) === 0x20 || text.charCodeAt(end) === 0x09) end++;
    // YAML drops an escaped break with the next line's indent; NEL is no JavaScript line
    // terminator, so there `\` before it is an identity escape.
    if (!yaml) out.run(text, c === NEL ? at + 1 : breakEnd, end);
    return end;
  }
  // Any other character stands for itself, but the letters of the reading's own escapes.
  const letter = c < 0x80 ? ((yaml ? YAML_LETTERS : LENIENT_LETTERS)[c] as number) : -1;
  out.unit(letter === -1 ? c : letter);
  return at + 2;
}

/** `text` with its escapes undone as JSON, JSON5, Json.NET, JavaScript and GraphQL undo them (itself when it has none). */
export function escapesUndone(text: string): string {
  return text.includes('\\') ? undone(text, false) : text;
}

/** `text` with its escapes undone as YAML's double-quoted scalars undo them, when it has an escape they read otherwise than escapesUndone; else undefined. */
export function yamlEscapesUndone(text: string): string | undefined {
  return YAML_ONLY.test(text) ? undone(text, true) : undefined;
}
