/**
 * JSON member names that are a dotted path into the schema. Laravel's `Arr::get`/`Arr::has`
 * (`$request->all(['user.role'])`, `has()`, `Arr::get($request->all(), 'user.role')`) and lodash's
 * `_.get`/`_.has` return a member named `"user.role"` before they walk `user` → `role`: such a member
 * passed a schema that limits `user.role` as an undeclared extra and reached the app as that
 * property (red team 27f, F1). Segments are split as those readers split them: at each `.`,
 * exactly (no case folding); a segment is a declared property, a canonical array index
 * (`items.0.role`) stepping into an array's items, or a map's key (`additionalProperties`,
 * `patternProperties`: `teams.core.role`, review rt27 F4). The member's value is then checked
 * against the schema at that path (case-variants.ts), not refused for its name: `{"user.role":
 * "user"}` is what the schema allows there.
 */
import { MAX_JSON_DEPTH } from '../net/json-body.js';

/** What the walk needs of a place in a schema (case-variants.ts ObjectPlace). */
export interface PathPlace {
  readonly names: { readonly exact: ReadonlySet<string> } | undefined;
  /** The longest name declared here: a longer segment is none of them, unless the place is a map. */
  readonly longest: number;
  /** 3.1 `prefixItems` here: an item's schema depends on its index. */
  readonly prefixed: boolean;
  member(key: string): PathPlace | undefined;
  /** An undeclared member's place: its additionalProperties and patternProperties schemas, or undefined (none: a closed or open object). */
  mapMember(): PathPlace | undefined;
  item(index: number): PathPlace | undefined;
}

/** A path's segments: member names, and array indices as numbers. */
export type PathKey = string | number;

const DOT = 0x2e;
/**
 * Segments read at most: MAX_JSON_DEPTH, the deepest nesting validation reads. Apps read short
 * literal paths; a recursive schema declares `a.a.a…` at any depth, and walking 5 million segments
 * of one 10 MiB name took 0.4 s.
 */
export const MAX_SEGMENTS = MAX_JSON_DEPTH;
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

/** Where a dotted name leads: its segments, and whether an array on the way has prefixItems (the index matters). */
export interface DottedPath {
  readonly keys: PathKey[];
  readonly prefixed: boolean;
}

/**
 * The path `key` (holding a `.`), split at each `.`, names from `place` down, when every segment has
 * a place in the schema (declared, an item's index, a map's key): two segments or more,
 * `maxSegments` at most; undefined for one that leaves the schema (an undeclared name on an object
 * that is no map).
 * A segment is read up to the place's longest name and one more character, unless the place is a
 * map (its keys are any length): so the walk reads the key at most once, linear however long it is.
 */
export function dottedPathOf(place: PathPlace, key: string, maxSegments = MAX_SEGMENTS): DottedPath | undefined {
  const n = key.length;
  const keys: PathKey[] = [];
  let prefixed = false;
  let at: PathPlace = place;
  let start = 0;
  for (let segments = 1; segments <= maxSegments; segments++) {
    const map = at.mapMember();
    const limit = map === undefined ? Math.min(n, start + Math.max(at.longest, MAX_INDEX_DIGITS) + 1) : n;
    let end = start;
    while (end < limit && key.charCodeAt(end) !== DOT) end++;
    // Longer than any name here (and any index), and no map: the path names nothing.
    if (end === limit && end < n) return undefined;
    const last = end === n;
    const declared = end - start <= at.longest && at.names?.exact.has(key.slice(start, end)) === true;
    const index = declared ? -1 : indexOf(key, start, end);
    let next: PathPlace | undefined;
    if (declared) {
      keys.push(key.slice(start, end));
      next = at.member(key.slice(start, end));
    } else if (index !== -1 && (next = at.item(index)) !== undefined) {
      keys.push(index);
      prefixed ||= at.prefixed;
    } else if (map !== undefined) {
      keys.push(key.slice(start, end));
      next = map;
    } else return undefined;
    if (last) return segments > 1 && (declared || next !== undefined) ? { keys, prefixed } : undefined;
    if (next === undefined) return undefined;
    at = next;
    start = end + 1;
  }
  return undefined;
}
