/**
 * Names that differ from a declared one only in letter case. Go's encoding/json, ASP.NET Core
 * (System.Text.Json with its web defaults, and its query-string model binding) and Jackson with
 * ACCEPT_CASE_INSENSITIVE_PROPERTIES bind `"ROLE"` to the property `role`: a body
 * `{"role":"user","ROLE":"admin"}`, or `{"ROLE":"admin"}` alone, passes a schema that limits
 * `role` (the other spelling is just an additional property) and reaches such a backend as
 * `role: "admin"`. So a member or query parameter whose name folds to a declared name without
 * being it is refused.
 *
 * Folding: upper case, then lower case, which also maps what those libraries fold by Unicode rules
 * (`ſ` → s, the Kelvin sign `K` → k, dotless `ı` → i, dotted `İ` → i), at the price of a few names no backend folds
 * together (`ß` and `ss`).
 *
 * Separators too: pydantic with `populate_by_name` (`validate_by_name`, the usual setting for a
 * camelCase FastAPI model under `alias_generator=to_camel`) binds the field's own name `is_admin`
 * besides the `isAdmin` the document lists, and key converters (Rails' olive_branch, Jackson naming
 * strategies) bind `is_admin` and `isAdmin` alike. So a JSON member is compared with `_` and `-`
 * removed as well (`is_admin`, `IS-ADMIN` are variants of `isAdmin`, and `isAdmin` of a declared
 * `is_admin`). A name the schema declares is never a variant, even if another declared one folds
 * the same.
 */
import { escapePointer, isSchema, type Schema } from './subschemas.js';
import { separatorsRemoved } from './separators-removed.js';
import { dottedPathOf, MAX_SEGMENTS, type PathKey, type PathPlace } from './dotted-names.js';
export interface DeclaredNames {
  readonly exact: ReadonlySet<string>;
  /** Folded name → the declared name. */
  readonly folded: ReadonlyMap<string, string>;
}

export const foldCase = (name: string): string => {
  const folded = name.toUpperCase().toLowerCase();
  // `İ` (U+0130) lower-cases to `i` and a combining dot above (U+0307), where Java's
  // Character.toLowerCase (equalsIgnoreCase) reads `i`: `clİent:` is `client:` to it. Rare, so
  // looked for first (this runs on the request path).
  return folded.includes('\u0307') ? folded.replace(/i\u0307/g, 'i') : folded;
};

/**
 * Letter case and the separators `_` and `-` folded away: `is_admin`, `IS-ADMIN`, `isAdmin` are
 * `isadmin`. Through separatorsRemoved: the regular expression alone overflowed the stack on a JSON
 * member `ā` + 9 MiB of `_` + `b` (a RangeError, so a 500).
 */
export const foldSpelling = (name: string): string => foldCase(separatorsRemoved(name));

export function declaredNames(names: Iterable<string>): DeclaredNames | undefined {
  const exact = new Set(names);
  if (exact.size === 0) return undefined;
  const folded = new Map<string, string>();
  for (const name of exact) if (!folded.has(foldSpelling(name))) folded.set(foldSpelling(name), name);
  return { exact, folded };
}

/** The declared name `name` is a variant of (in letter case or separators), or undefined (declared itself, or unrelated). */
export function caseVariantOf(name: string, declared: DeclaredNames): string | undefined {
  if (declared.exact.has(name)) return undefined;
  return declared.folded.get(foldSpelling(name));
}

/**
 * A schema and the subschemas that apply with it to the same value (dereferenced, each once: a
 * document may contain itself), in document order: every in-place applicator of JSON Schema
 * 2020-12 (§10.2: allOf, anyOf, oneOf, not, if, then, else, dependentSchemas; draft 4-7's
 * dependencies) — OpenAPI 3.0 has allOf, anyOf, oneOf, not. A name declared only in a branch, a
 * condition or a negation is still one the backend's type has: Go's encoding/json binds `ROLE` to
 * `Role` whichever of them names it (red team 29, F1).
 */
function applying(schema: Schema, into: Schema[], seen: Set<Schema>): void {
  const stack = [schema];
  while (stack.length > 0) {
    const s = stack.pop() as Schema;
    if (seen.has(s)) continue;
    seen.add(s);
    into.push(s);
    const next: unknown[] = [];
    for (const k of IN_PLACE_LISTS) if (Array.isArray(s[k])) next.push(...(s[k] as unknown[]));
    for (const k of IN_PLACE_ONE) next.push(s[k]);
    for (const k of IN_PLACE_MAPS) if (isSchema(s[k])) next.push(...Object.values(s[k]));
    for (let i = next.length - 1; i >= 0; i--) if (isSchema(next[i])) stack.push(next[i] as Schema);
  }
}
const IN_PLACE_LISTS = ['allOf', 'anyOf', 'oneOf'];
const IN_PLACE_ONE = ['not', 'if', 'then', 'else'];
/** Their values are schemas (dependencies': a schema or a list of names). */
const IN_PLACE_MAPS = ['dependentSchemas', 'dependencies'];

/**
 * The names `s` gives the object it describes: its properties, and the names it requires or makes
 * depend on each other (`required`, `dependentRequired`, `dependencies`, `dependentSchemas`' keys):
 * `not: {required: [is_admin]}` forbids a member the backend's type has.
 */
function namesOf(s: Schema): string[] {
  const names = isSchema(s.properties) ? Object.keys(s.properties) : [];
  if (Array.isArray(s.required)) names.push(...s.required.filter((n): n is string => typeof n === 'string'));
  for (const k of ['dependentRequired', 'dependencies', 'dependentSchemas']) {
    const map = s[k];
    if (!isSchema(map)) continue;
    for (const [name, value] of Object.entries(map)) {
      names.push(name);
      if (Array.isArray(value)) names.push(...value.filter((n): n is string => typeof n === 'string'));
    }
  }
  return names;
}

/**
 * Places of several schemas kept per finder at most (those of one schema are bounded by the
 * document's schemas). Each is a set of the document's schemas (a member declared in `properties`
 * and in a `then`), so a real document has a few; a contrived one could have exponentially many,
 * reached one by one by documents sent. Past it such a place is built where it is reached, as
 * before it was kept at all.
 */
const SEVERAL_KEPT = 1_000;

/**
 * A finder's places, each built once for the document's life: keyed by the identity of the schemas
 * it is the place of (in document order). A recursive schema is walked with the places it has, and
 * a member declared in two schemas is not built again for each array item it is reached in (review
 * 2, F1: 10 000 items rebuilt a nested place over 150 names each, 2.2 s).
 */
class Places {
  private readonly ids = new Map<Schema, number>();
  private readonly kept = new Map<string, ObjectPlace>();
  private several = 0;

  /** The place of a value the `schemas` describe; undefined for none. */
  of(schemas: readonly Schema[]): ObjectPlace | undefined {
    if (schemas.length === 0) return undefined;
    let key = '';
    for (const s of schemas) {
      let id = this.ids.get(s);
      if (id === undefined) this.ids.set(s, (id = this.ids.size));
      key += `${id},`;
    }
    const place = this.kept.get(key);
    if (place !== undefined) return place;
    const keep = schemas.length === 1 || this.several < SEVERAL_KEPT;
    const built = new ObjectPlace(schemas, this, keep);
    if (!keep) return built;
    if (schemas.length > 1) this.several++;
    this.kept.set(key, built);
    return built;
  }
}

/** What the schemas at one place in a document say about a value there. */
class ObjectPlace implements PathPlace {
  readonly names: DeclaredNames | undefined;
  /** The longest declared name (dotted-names.ts reads no longer segment). */
  readonly longest: number;
  private readonly schemas: readonly Schema[];
  readonly prefixed: boolean;
  /** Items' place when no schema here has prefixItems (the same for every index), once asked for. */
  private items: ObjectPlace | undefined | null = null;
  /** Declared members' places, and the others' (additionalProperties), once asked for. */
  private readonly declaredMembers = new Map<string, ObjectPlace | undefined>();
  private otherMembers: ObjectPlace | undefined | null = null;
  private mapMembers: ObjectPlace | undefined | null = null;

  /**
   * @param kept in `places` (all are but places of several schemas past SEVERAL_KEPT). A place that
   * is not is kept only by one that is (one level): a chain of them down a recursive schema is built
   * per document, not kept a level deeper each time.
   */
  constructor(
    schemas: readonly Schema[],
    private readonly places: Places,
    readonly kept: boolean,
  ) {
    const all: Schema[] = [];
    const seen = new Set<Schema>();
    for (const s of schemas) applying(s, all, seen);
    this.schemas = all;
    this.names = declaredNames(all.flatMap(namesOf));
    this.longest = Math.max(0, ...[...(this.names?.exact ?? [])].map((name) => name.length));
    this.prefixed = all.some((s) => Array.isArray(s.prefixItems));
  }

  private keeps(child: ObjectPlace | undefined): boolean {
    return child === undefined || child.kept || this.kept;
  }

  /**
   * Member `key`'s place: its property schemas where declared, else additionalProperties and
   * unevaluatedProperties (a name only required, or a dependency's, has no schema of its own).
   */
  member(key: string): ObjectPlace | undefined {
    if (this.names?.exact.has(key) !== true) return this.others();
    // Only declared names are kept: the client chooses the others.
    if (this.declaredMembers.has(key)) return this.declaredMembers.get(key);
    const declaring = this.schemas.filter((s) => isSchema(s.properties) && Object.hasOwn(s.properties, key));
    const place =
      declaring.length > 0 ? this.places.of(declaring.map((s) => (s.properties as Schema)[key]).filter(isSchema)) : this.others();
    if (this.keeps(place)) this.declaredMembers.set(key, place);
    return place;
  }

  /** The place of the members no `properties` here names (additionalProperties, unevaluatedProperties), once asked for. */
  private others(): ObjectPlace | undefined {
    if (this.otherMembers !== null) return this.otherMembers;
    const other = this.places.of(this.schemas.flatMap((s) => [s.additionalProperties, s.unevaluatedProperties]).filter(isSchema));
    if (this.keeps(other)) this.otherMembers = other;
    return other;
  }

  /**
   * An undeclared member's place for a dotted path (dotted-names.ts): additionalProperties,
   * unevaluatedProperties and every patternProperties schema together (which pattern a key matches
   * is the validator's to say, on the value: case-variants' own walk does not go there).
   */
  mapMember(): ObjectPlace | undefined {
    if (this.mapMembers !== null) return this.mapMembers;
    const schemas = this.schemas.flatMap((s) => [
      ...[s.additionalProperties, s.unevaluatedProperties].filter(isSchema),
      ...(isSchema(s.patternProperties) ? Object.values(s.patternProperties).filter(isSchema) : []),
    ]);
    const place = this.places.of(schemas);
    if (this.keeps(place)) this.mapMembers = place;
    return place;
  }

  /**
   * Item `index`'s place: 3.1 `prefixItems`, then `items`; and `contains`, `unevaluatedItems`,
   * draft 4-7's `additionalItems`, which may apply to any item (their names are the item type's).
   */
  item(index: number): ObjectPlace | undefined {
    if (!this.prefixed) {
      if (this.items !== null) return this.items;
      const items = this.places.of(this.schemas.flatMap((s) => [s.items, ...anyItem(s)]).filter(isSchema));
      if (this.keeps(items)) this.items = items;
      return items;
    }
    return this.places.of(
      this.schemas
        .flatMap((s) => [
          Array.isArray(s.prefixItems) && index < s.prefixItems.length ? (s.prefixItems as unknown[])[index] : s.items,
          ...anyItem(s),
        ])
        .filter(isSchema),
    );
  }
}

const anyItem = (s: Schema): unknown[] => [s.contains, s.unevaluatedItems, s.additionalItems];

/** The property names a schema declares for the object it describes (through its in-place applicators: applying). */
export function topLevelNames(schema: unknown): string[] {
  return isSchema(schema) ? [...(new Places().of([schema])?.names?.exact ?? [])] : [];
}

/**
 * A member named as a declared name it is not: `caseOnly` when only letter case differs (not
 * separators); `dotted` when the name is a dotted path into the schema whose value the schema
 * there refuses (`declared`: the path from the document's root; `why`: the refusal, absent when
 * the value was not checked: dotted-names.ts).
 */
export interface NameVariant {
  readonly pointer: string;
  readonly declared: string;
  readonly caseOnly: boolean;
  readonly dotted?: true;
  readonly why?: string;
}

/**
 * The check of a dotted member's value at the path it names: `document` holds the value at that
 * path and nothing else. Returns why the schema refuses it, or undefined.
 */
export type DottedValueCheck = (document: unknown) => string | undefined;

/**
 * Path keys value-checked per document at most (the path from the root and the dotted name's
 * segments, summed): each check validates a document as deep as its path. Past it a dotted name
 * with a place in the schema is refused by its name, as before the values were checked: a real
 * body holds a few dotted names, a hostile one a million 1 000 levels down.
 */
const DOTTED_KEYS_CHECKED = 100_000;

/**
 * Finds, in a parsed JSON document, the first object member whose name is a case variant of a
 * name the schema declares *for that object* (a map's keys, under `additionalProperties`, are the
 * client's: `{"labels":{"Name":"x"}}` beside a property `name` is fine), or a dotted path into the
 * schema whose value `check` refuses there (every such path, without `check`).
 */
export class CaseVariantFinder {
  private readonly root: ObjectPlace | undefined;

  constructor(
    schema: unknown,
    private readonly check?: DottedValueCheck,
  ) {
    this.root = isSchema(schema) ? new Places().of([schema]) : undefined;
  }

  find(value: unknown, prefix: string): NameVariant | undefined {
    if (this.root === undefined) return undefined;
    let budget = DOTTED_KEYS_CHECKED;
    const pending: [unknown, ObjectPlace, Step | undefined][] = [[value, this.root, undefined]];
    while (pending.length > 0) {
      const [v, place, at] = pending.pop() as [unknown, ObjectPlace, Step | undefined];
      if (typeof v !== 'object' || v === null) continue;
      const depth = at === undefined ? 0 : at.depth + 1;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const item = typeof v[i] === 'object' ? place.item(i) : undefined;
          if (item) pending.push([v[i], item, step(at, i, place.prefixed, false)]);
        }
        continue;
      }
      for (const key in v) {
        if (!Object.prototype.hasOwnProperty.call(v, key)) continue;
        const variantOf = place.names && caseVariantOf(key, place.names);
        if (variantOf !== undefined)
          return { pointer: pointerOf(prefix, { up: at, key }), declared: variantOf, caseOnly: foldCase(key) === foldCase(variantOf) };
        const member = (v as Record<string, unknown>)[key];
        // A name the schema declares here is its own property, not a path; a map's keys (a place
        // declaring no name) are the client's. Within a dotted member's value, no other dotted
        // name is read as a path (the value was checked whole).
        const path =
          place.names !== undefined && key.includes('.') && at?.inDotted !== true && !place.names.exact.has(key)
            ? dottedPathOf(place, key, MAX_SEGMENTS - depth)
            : undefined;
        if (path !== undefined) {
          const found = {
            pointer: pointerOf(prefix, { up: at, key }),
            declared: pathOf({ up: at, key }),
            caseOnly: false,
            dotted: true,
          } as const;
          if (this.check === undefined || path.prefixed || (at?.prefixed ?? false)) return found;
          budget -= depth + path.keys.length;
          if (budget < 0) return found;
          const why = this.check(documentAt(at, path.keys, member));
          if (why !== undefined) return { ...found, why };
        }
        const next = typeof member === 'object' && member !== null ? place.member(key) : undefined;
        if (next) pending.push([member, next, step(at, key, false, path !== undefined)]);
      }
    }
    return undefined;
  }
}

/**
 * A document holding `value` at the path `up` → `keys` and nothing else: what a reader of the
 * dotted path sees there. An array holds it as its one item: the place of every index is the same
 * (a path through `prefixItems` is refused by its name instead: CaseVariantFinder).
 */
function documentAt(up: Step | undefined, keys: readonly PathKey[], value: unknown): unknown {
  let doc = value;
  for (let i = keys.length - 1; i >= 0; i--) doc = wrap(keys[i] as PathKey, doc);
  for (let s = up; s !== undefined; s = s.up) doc = wrap(s.key, doc);
  return doc;
}

/** A computed key defines an own member, `__proto__` included (no prototype is set). */
const wrap = (key: PathKey, value: unknown): unknown => (typeof key === 'number' ? [value] : { [key]: value });

/** The steps a pointer is written from. */
interface PointerStep {
  readonly up: PointerStep | undefined;
  readonly key: string | number;
}

/** A step down a document: the JSON pointer is written only for the member found, not for every one walked. */
interface Step {
  readonly up: Step | undefined;
  readonly key: string | number;
  /** Steps above this one: kept, not counted per dotted name. */
  readonly depth: number;
  /** An item of an array with prefixItems on the way: its index matters. */
  readonly prefixed: boolean;
  /** Within a dotted member's value. */
  readonly inDotted: boolean;
}

const step = (up: Step | undefined, key: string | number, prefixed: boolean, dotted: boolean): Step => ({
  up,
  key,
  depth: up === undefined ? 0 : up.depth + 1,
  prefixed: prefixed || (up?.prefixed ?? false),
  inDotted: dotted || (up?.inDotted ?? false),
});

function keysOf(step: PointerStep, escape: (key: string) => string): string[] {
  const keys: string[] = [];
  for (let s: PointerStep | undefined = step; s !== undefined; s = s.up)
    keys.push(typeof s.key === 'number' ? String(s.key) : escape(s.key));
  return keys.reverse();
}

const pointerOf = (prefix: string, step: PointerStep): string => `${prefix}/${keysOf(step, escapePointer).join('/')}`;

/** The dotted path a member found at `step` names from the root (`user.role`, `user.profile.a.b`). */
const pathOf = (step: PointerStep): string => keysOf(step, (key) => key).join('.');
