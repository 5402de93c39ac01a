/**
 * Whether a key's PHP reading (name-readings.ts `readingOf`, or its unclosed-bracket reading) is too
 * long to be any name a lookup compares it with, found in one pass that stops once it is, without
 * building the reading. A form or JSON body may hold one key of max_body_bytes (10 MiB): building
 * its readings (regular-expression replaces, case folding, whole strings each) held the event loop
 * for seconds (review rt26 F3), though declared and override names are short.
 *
 * The reading is phpName's (`%uXXXX` decoded, cut at the first NUL, leading white space trimmed as
 * String#trimStart trims), then the name after any leading brackets up to the next bracket — or, for
 * the unclosed reading, all of it. Each character but U+0307 folds (foldCase) to at least one
 * character: `İ` and `i` with U+0307 fold to `i`, nothing folds to nothing (a surrogate pair is
 * counted once), so a reading with more than `max` such characters folds to more than `max`. With `separators`, `_`, `-` and what the
 * reading turns into `_` (` `, `.`, the unclosed `[`) are not counted either: separatorsRemoved may
 * drop them, and no other character folds to one.
 */
import { isTrimmedSpace } from '../net/cookie-trim.js';

const NUL = 0;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const COMBINING_DOT_ABOVE = 0x307;

const hexValue = (c: number): number => {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
};

/** The `%uXXXX` escape's character at `i` (percent-u.ts: `%u` or `%U`, four hex digits), or -1. */
function percentUAt(key: string, i: number): number {
  if (key.charCodeAt(i) !== 0x25 || i + 5 >= key.length || (key.charCodeAt(i + 1) | 0x20) !== 0x75) return -1;
  let value = 0;
  for (let k = i + 2; k < i + 6; k++) {
    const digit = hexValue(key.charCodeAt(k));
    if (digit === -1) return -1;
    value = value * 16 + digit;
  }
  return value;
}

const isSeparator = (c: number): boolean => c === 0x5f /* _ */ || c === 0x2d; /* - */

/** Code units to a string, in chunks (no spread of an unbounded array). */
function stringOf(codes: readonly number[]): string {
  let text = '';
  for (let i = 0; i < codes.length; i += 4096) text += String.fromCharCode(...codes.slice(i, i + 4096));
  return text;
}

/**
 * `key`'s PHP reading before case folding (` `, `.` and, `unclosed`, the `[` read as `_`), or null
 * when it has more than `max` characters that fold to something (`separators`: to something
 * withoutSeparators keeps). With `separators`, a run of `_` and `-` longer than `max + 1` is cut to
 * `max + 1`: withoutSeparators drops a run between letters or digits whatever its length, and a run
 * it keeps that long leaves the reading longer than `max` either way. `unclosed`: the reading of a
 * key whose first `[` (not its first character) is never closed, undefined for another key.
 */
export function boundedReading(key: string, max: number, separators: boolean, unclosed = false): string | null | undefined {
  // No `[`, even escaped: no unclosed reading.
  if (unclosed && !key.includes('[') && !key.includes('%')) return undefined;
  const n = key.length;
  const codes: number[] = [];
  let trimmed = false;
  let inName = false;
  let opened = false;
  let count = 0;
  let run = 0;
  let previous = -1;
  for (let i = 0; i < n;) {
    // percentUDecoded replaces escapes left to right, as this reads them.
    let c = key.charCodeAt(i);
    const escaped = c === 0x25 ? percentUAt(key, i) : -1;
    if (escaped === -1) i++;
    else {
      c = escaped;
      i += 6;
    }
    if (c === NUL) break;
    if (!trimmed) {
      if (isTrimmedSpace(c)) continue;
      trimmed = true;
    }
    if (!unclosed && (c === OPEN || c === CLOSE)) {
      if (inName) break;
      continue;
    }
    if (unclosed && c === OPEN && !opened) {
      // PHP drops a key with nothing before its bracket.
      if (!inName) return undefined;
      opened = true;
    } else if (unclosed && c === CLOSE && opened) return undefined;
    inName = true;
    const read = c === 0x20 || c === 0x2e || (unclosed && c === OPEN) ? 0x5f : c;
    // foldCase drops a U+0307 after an `i` (what a counted character may fold to), and a surrogate
    // pair may fold to one character: either counts once. So the reading kept is O(max²) long.
    const dropped =
      c === COMBINING_DOT_ABOVE
        ? previous !== COMBINING_DOT_ABOVE && !isSeparator(previous) && !isSurrogate(previous)
        : isLowSurrogate(c) && isHighSurrogate(previous);
    previous = read;
    if (separators && isSeparator(read)) {
      if (++run > max + 1) continue;
    } else {
      run = 0;
      if (!dropped && ++count > max) return null;
    }
    codes.push(read);
  }
  if (unclosed && !opened) return undefined;
  return stringOf(codes);
}

const isLowSurrogate = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;
const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdfff;
