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

const ESCAPE =
  /\\(?:u\{([0-9A-Fa-f]+)\}|u([0-9A-Fa-f]{4})|x([0-9A-Fa-f]{2})|U([0-9A-Fa-f]{8})|(\r\n|[\n\r\u0085\u2028\u2029])([ \t]*)|([^]))/g;
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

/** The character a code point names, or undefined past Unicode (the reader refuses the text). */
function codePoint(hex: string): string | undefined {
  const cp = parseInt(hex, 16);
  return cp <= 0x10ffff ? String.fromCodePoint(cp) : undefined;
}

type Replacer = (
  match: string,
  braced?: string,
  u?: string,
  x?: string,
  wide?: string,
  lineBreak?: string,
  indent?: string,
  c?: string,
) => string;

/** One replacer, read the lenient (JSON5, JavaScript, GraphQL) way or YAML's: they differ in `\U`, line breaks and letters. */
const undoing =
  (yaml: boolean): Replacer =>
  (match, braced, u, x, wide, lineBreak, indent, c) => {
    if (braced !== undefined) return codePoint(braced) ?? match;
    if (u !== undefined) return String.fromCharCode(parseInt(u, 16));
    if (x !== undefined) return String.fromCharCode(parseInt(x, 16));
    if (wide !== undefined) return yaml ? (codePoint(wide) ?? match) : `U${wide}`;
    // YAML drops an escaped break with the next line's indent; NEL is no JavaScript line
    // terminator, so there `\` before it is an identity escape.
    if (lineBreak !== undefined) return yaml ? '' : lineBreak === '\u0085' ? `\u0085${indent}` : (indent as string);
    return (yaml ? YAML_ESCAPES : SINGLE_ESCAPES)[c as string] ?? (c as string);
  };
const lenientUndo = undoing(false);
const yamlUndo = undoing(true);

/** `text` with its escapes undone as JSON, JSON5, Json.NET, JavaScript and GraphQL undo them (itself when it has none). */
export function escapesUndone(text: string): string {
  return text.includes('\\') ? text.replace(ESCAPE, lenientUndo) : text;
}

/** `text` with its escapes undone as YAML's double-quoted scalars undo them, when it has an escape they read otherwise than escapesUndone; else undefined. */
export function yamlEscapesUndone(text: string): string | undefined {
  return YAML_ONLY.test(text) ? text.replace(ESCAPE, yamlUndo) : undefined;
}
