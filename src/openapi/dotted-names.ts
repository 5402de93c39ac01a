/**
 * JSON member names that are a declared property's dotted path. Laravel's `Arr::get`/`Arr::has`
 * (`$request->all(['user.role'])`, `has()`, `Arr::get($request->all(), 'user.role')`) and lodash's
 * `_.get`/`_.has` return a member named `"user.role"` before they walk `user` → `role`: such a member
 * passed a schema that limits `user.role` as an undeclared extra and reached the app as that
 * property (red team 27f, F1). Segments are compared as those readers split them: at each `.`,
 * exactly (no case folding), a canonical array index (`items.0.role`) stepping into an array's items.
 */
import { MAX_JSON_DEPTH } from '../net/json-body.js';

/** What the walk needs of a place in a schema (case-variants.ts ObjectPlace). */
export interface PathPlace {
  readonly names: { readonly exact: ReadonlySet<string> } | undefined;
  /** The longest name declared here: a longer segment is none of them. */
  readonly longest: number;
  member(key: string): PathPlace | undefined;
  item(index: number): PathPlace | undefined;
}

const DOT = 0x2e;
/**
 * Segments read at most: MAX_JSON_DEPTH, the deepest nesting validation reads. Apps read short
 * literal paths; a recursive schema declares `a.a.a…` at any depth, and walking 5 million segments
 * of one 10 MiB name took 0.4 s.
 */
const MAX_SEGMENTS = MAX_JSON_DEPTH;
/** Indices to 9 digits: a JSON array that long does not fit a body. */
const MAX_INDEX_DIGITS = 9;

/** `segment` as an array index the readers take (`0`, `12`; not `01`, `+1`), or -1. */
function indexOf(key: string, start: number, end: number): number {
  const n = end - start;
  if (n === 0 || n > MAX_INDEX_DIGITS || (n > 1 && key.charCodeAt(start) === 0x30)) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    value = value * 10 + c - 0x30;
  }
  return value;
}

/**
 * Whether `key` (holding a `.`), split at each `.`, names a property declared from `place` down
 * (two segments or more, each declared where the last one leads; the last may be an item's index;
 * MAX_SEGMENTS at most).
 * Each segment is read up to the place's longest name and one more character, so the walk reads
 * the key at most once: linear however long the key (a name may be max_body_bytes long).
 */
export function namesDeclaredPath(place: PathPlace, key: string): boolean {
  const n = key.length;
  let at: PathPlace = place;
  let start = 0;
  for (let segments = 1; segments <= MAX_SEGMENTS; segments++) {
    const limit = Math.min(n, start + Math.max(at.longest, MAX_INDEX_DIGITS) + 1);
    let end = start;
    while (end < limit && key.charCodeAt(end) !== DOT) end++;
    // Longer than any name here (and any index): the path names nothing declared.
    if (end === limit && end < n) return false;
    const last = end === n;
    const declared = end - start <= at.longest && at.names?.exact.has(key.slice(start, end)) === true;
    const index = declared ? -1 : indexOf(key, start, end);
    if (!declared && index === -1) return false;
    if (last) return segments > 1 && (declared || at.item(index) !== undefined);
    const next = declared ? at.member(key.slice(start, end)) : at.item(index);
    if (next === undefined) return false;
    at = next;
    start = end + 1;
  }
  return false;
}
