/**
 * A name without the `_` and `-` runs between letters or digits (case-variants.ts
 * INTERIOR_SEPARATORS), in one pass. The regular expression's backtracking overflows the stack on a
 * long run in a two-byte string (`ā` and 9 MiB of `_`: RangeError, review rt26 F3), so a long name
 * is read here instead: each run's neighbours are tested, the runs between letters or digits dropped.
 */
/**
 * Separators between letters or digits (`is_admin`, `is-admin`): what pydantic's and Jackson's
 * naming strategies change. Leading and trailing ones stay: `_token` (Laravel's CSRF field),
 * `_method`, `_charset_`, `_id`, `_links` are other names than `token`, `method`, `id`.
 */
export const INTERIOR_SEPARATORS = /(?<=[\p{L}\p{N}])[_-]+(?=[\p{L}\p{N}])/gu;

const SHORT = 1024;
const LETTER_OR_DIGIT = /^[\p{L}\p{N}]$/u;

const isSeparator = (c: number): boolean => c === 0x5f /* _ */ || c === 0x2d; /* - */

/** The code point ending just before `end`, as a string (a surrogate pair whole). */
function pointBefore(name: string, end: number): string {
  const low = name.charCodeAt(end - 1);
  if (low >= 0xdc00 && low <= 0xdfff && end >= 2) {
    const high = name.charCodeAt(end - 2);
    if (high >= 0xd800 && high <= 0xdbff) return name.slice(end - 2, end);
  }
  return name.slice(end - 1, end);
}

/** The code point starting at `start`, as a string. */
const pointAt = (name: string, start: number): string => String.fromCodePoint(name.codePointAt(start) as number);

export function separatorsRemoved(name: string, short = SHORT): string {
  if (name.length < short) return name.replace(INTERIOR_SEPARATORS, '');
  const kept: string[] = [];
  let from = 0;
  for (let i = 0; i < name.length;) {
    if (!isSeparator(name.charCodeAt(i))) {
      i++;
      continue;
    }
    const start = i;
    while (i < name.length && isSeparator(name.charCodeAt(i))) i++;
    if (start > 0 && i < name.length && LETTER_OR_DIGIT.test(pointBefore(name, start)) && LETTER_OR_DIGIT.test(pointAt(name, i))) {
      kept.push(name.slice(from, start));
      from = i;
    }
  }
  kept.push(name.slice(from));
  return kept.join('');
}
