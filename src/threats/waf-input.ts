/**
 * A request's names and values as libddwaf sees them: flattened into one list of strings with
 * their parameter paths, decoded the way the backend decodes them (query once, JSON, form; and a
 * string with backslash escapes as a language embedded in it would undo them). Names
 * become entries like values, so a payload in a key is inspected too; strings longer than
 * libddwaf's 4 096-character limit are cut into overlapping pieces, and the list is handed over in
 * containers of at most 256 entries — so nothing hides in length, width or depth, which libddwaf
 * would otherwise skip silently.
 */

import { escapesUndone, yamlEscapesUndone } from '../net/string-escapes.js';
import { fillerAsOneSpace, withoutNuls } from './waf-filler.js';

export interface WafTexts {
  readonly texts: string[];
  /**
   * Parallel to texts when asked for (`/query/q`, `/query/q#name`, `/body/items/0/name`): building
   * a path per entry costs more than inspecting most requests, so the hot path fills texts only
   * and a match's path is found by filling again with paths (the order is the same).
   */
  readonly paths: string[] | undefined;
  /** Names and values seen, inert ones included: what max_entries bounds. */
  entries: number;
}

const WAF_MAX_STRING = 4096;
/**
 * Strings handed to libddwaf per name or value, on average, at most: its readings (NULs dropped,
 * NFKC, escapes undone as JSON5/GraphQL and as YAML do) and a long one's pieces. Counted against
 * max_entries itself, 3 400 Windows paths (three readings each) were refused as too many entries.
 */
const READINGS_PER_ENTRY = 4;
const OVERLAP = 512;
/** The most entries libddwaf inspects in one container. */
export const WAF_MAX_CONTAINER = 256;
/** The libddwaf input address of the flattened strings (rules read it; lanes have their own). */
export const WAF_VALUES = 'warden.values';

export class WafInputTooLarge extends Error {
  /**
   * entries: too many strings; depth: nested too deep; text: too much XML text read again in
   * enclosing elements; body: a body of a type read only when it opens like JSON, longer than is held.
   */
  constructor(readonly what: 'entries' | 'depth' | 'text' | 'body') {
    super(
      what === 'text'
        ? 'request has too much nested text to inspect'
        : what === 'body'
          ? 'request body is too long to inspect'
          : `request has too many ${what} to inspect`,
    );
  }
}

export interface FlattenLimits {
  maxEntries: number;
  maxDepth: number;
}

export function createWafTexts(withPaths = false): WafTexts {
  return { texts: [], paths: withPaths ? [] : undefined, entries: 0 };
}

/**
 * Strings no rule can match: identifiers, numbers, SKUs, UUIDs, dates (letters, digits, `_`, `-`, `.`
 * without `..`, `proto`, `.ini` or `--`, no spaces). Every rule needs a space, a quote, a bracket, a
 * slash, `$`, `<`, `:`, `;`, `..` or `proto` (`__proto__`, `constructor.prototype`) somewhere — but
 * for a bare `win.ini` / `boot.ini` (traversal-files matches them at the start) and a comment that
 * libinjection reads as SQL (`null--`). Skipping these halves a typical JSON body's strings; a unit
 * test runs the engine over the shortcut's alphabet to keep this list true.
 */
const INERT = /^[A-Za-z0-9_.-]{0,64}$/;
/** What in an INERT string a rule can still match. */
const NOT_INERT = /\.\.|proto|\.ini|--/i;

/** Any character past U+007F (a code unit test; what NFKC can change in ASCII is nothing). */
const NON_ASCII = /[\u0080-\uffff]/;

/** Exported for the test that holds it to the rules. */
export const isInert = (text: string) => INERT.test(text) && !NOT_INERT.test(text);

function push(out: WafTexts, path: string, text: string, limits: FlattenLimits, escapes = true): void {
  if (++out.entries > limits.maxEntries) throw new WafInputTooLarge('entries');
  if (isInert(text)) return;
  pushReadings(out, path, text);
  // `{ s(q: "\u{3C}script>") }` in a JSON string: the language the backend hands a string to
  // (GraphQL, YAML, JavaScript) undoes escapes that the parse which gave it left. Only strings
  // with a backslash pay for it.
  if (escapes && text.includes('\\')) {
    const undone = escapesUndone(text);
    if (undone !== text) pushReadings(out, path, undone);
    const yaml = yamlEscapesUndone(text);
    if (yaml !== undefined && yaml !== undone) pushReadings(out, path, yaml);
  }
  if (out.texts.length > limits.maxEntries * READINGS_PER_ENTRY) throw new WafInputTooLarge('entries');
}

/** A string as it is, and as backends that drop NULs or normalise it read it. */
function pushReadings(out: WafTexts, path: string, text: string): void {
  // `<scr\0ipt>`: a NUL splits a keyword for the rules but not for every backend.
  if (text.includes('\0')) pushPieces(out, path, withoutNuls(text));
  // `1＇ OR 1=1`: SQL Server's best-fit conversion to varchar and NFKC normalisation (Python,
  // Java's Normalizer) turn full-width and other compatibility forms into ASCII the rules know.
  if (NON_ASCII.test(text)) {
    const compatible = text.normalize('NFKC');
    if (compatible !== text) pushPieces(out, path, compatible);
  }
  pushPieces(out, path, text);
}

function pushPieces(out: WafTexts, path: string, text: string): void {
  if (text.length <= WAF_MAX_STRING) {
    out.texts.push(text);
    out.paths?.push(path);
    return;
  }
  cutIntoPieces(out, path, text);
  // A payload whose parts a run of spaces or a comment longer than the overlap keeps apart (`1'`,
  // 700 spaces, `OR 1=1 --`) was in no piece whole: 200 for a textbook injection (docs/adversarial.md
  // 211). Read again with that filler as one space.
  const tight = fillerAsOneSpace(text);
  if (tight !== text) cutIntoPieces(out, path, tight);
}

function cutIntoPieces(out: WafTexts, path: string, text: string): void {
  for (let off = 0; off < text.length; off += WAF_MAX_STRING - OVERLAP) {
    out.texts.push(text.slice(off, off + WAF_MAX_STRING));
    out.paths?.push(path);
    if (off + WAF_MAX_STRING >= text.length) break;
  }
}

/** Adds a value (a string, or a parsed JSON / form structure) and every key in it. */
export function addValue(out: WafTexts, path: string, value: unknown, limits: FlattenLimits): void {
  visit(out, out.paths ? path : '', value, 0, limits);
}

/**
 * A body's text as it is, when its quoted strings are read on their own with their escapes undone
 * (jsonStringLiterals): undoing them again in the whole text would inspect it twice over.
 */
export function addText(out: WafTexts, path: string, text: string, limits: FlattenLimits): void {
  push(out, out.paths ? path : '', text, limits, false);
}

// Recursive: the depth is bounded by limits.maxDepth, checked before going deeper.
function visit(out: WafTexts, path: string, v: unknown, depth: number, limits: FlattenLimits): void {
  if (depth > limits.maxDepth) throw new WafInputTooLarge('depth');
  if (typeof v === 'string') return push(out, path, v, limits);
  if (typeof v !== 'object' || v === null) return;
  const withPaths = out.paths !== undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) visit(out, withPaths ? `${path}/${i}` : '', v[i], depth + 1, limits);
    return;
  }
  for (const k in v) {
    if (!Object.hasOwn(v, k)) continue;
    const segment = withPaths ? `${path}/${pointerSegment(k)}` : '';
    const child = (v as Record<string, unknown>)[k];
    push(out, withPaths ? `${segment}#name` : '', k, limits);
    // `{"constructor": {"prototype": …}}`: two plain names, one path a deep merge follows into a prototype.
    if (k === 'constructor' && typeof child === 'object' && child !== null && Object.hasOwn(child, 'prototype'))
      push(out, withPaths ? `${segment}#name` : '', 'constructor.prototype', limits);
    visit(out, segment, child, depth + 1, limits);
  }
}

/** What a name needs escaped in a parameter path: the segment separator, the suffix marker, the escape itself. */
const POINTER_SPECIAL = /[~/#]/;

/**
 * A key as a JSON Pointer segment (RFC 6901: "~" → "~0", "/" → "~1"), and "#" → "~2": a path's
 * `#name` / `#text` / `#pi` suffix is the waf's own, so a name `sql#x` must not read as one
 * (it put unredacted text into events, and `sql#…` passed an exclusion of `/body/sql`).
 */
export function pointerSegment(key: string): string {
  return POINTER_SPECIAL.test(key) ? key.replaceAll('~', '~0').replaceAll('/', '~1').replaceAll('#', '~2') : key;
}

/** The list in libddwaf-sized containers: an array of arrays of at most 256 strings each. */
export function wafBatches(texts: readonly string[]): string[][][] {
  const rows: string[][] = [];
  for (let i = 0; i < texts.length; i += WAF_MAX_CONTAINER) rows.push(texts.slice(i, i + WAF_MAX_CONTAINER));
  const batches: string[][][] = [];
  for (let i = 0; i < rows.length; i += WAF_MAX_CONTAINER) batches.push(rows.slice(i, i + WAF_MAX_CONTAINER));
  return batches;
}
