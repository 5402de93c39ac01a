/**
 * The shape of a parameter's (or property's) value — an array, an object, or a single value — as its
 * schema says it: by `type` (or among its types, 3.1: `[object, 'null']` is an object), else
 * through `allOf` (one member that says so is enough: all apply) or `oneOf`/`anyOf` (every branch
 * must agree, a branch that admits only null aside). The `$ref`s are inlined by
 * then (document.ts dereferences). Before, only `type` at the top was read: `allOf: [$ref Filter]`
 * (3.0's way to give a `$ref` a description) was no object, so its deepObject entries and exploded
 * properties were never decoded nor validated (docs/adversarial.md).
 */
import { isSchema } from './subschemas.js';

type Schema = Record<string, unknown> | undefined;

export type Shape = 'array' | 'object' | 'value';

const SINGLE_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null']);

/** Whether `s` admits `null` and nothing else: `type: 'null'` (or `['null']`), `const: null`, `enum: [null]`. */
function onlyNull(s: unknown): boolean {
  if (!isSchema(s)) return false;
  if (s.const === null) return true;
  if (Array.isArray(s.enum) && s.enum.length > 0 && s.enum.every((v) => v === null)) return true;
  const types = Array.isArray(s.type) ? (s.type as unknown[]) : [s.type];
  return types.length > 0 && types.every((t) => t === 'null');
}

/** By `type` alone; an array before an object before a single value, where `type` lists several (as before). */
function ownShape(s: Record<string, unknown>): Shape | undefined {
  const types = Array.isArray(s.type) ? (s.type as unknown[]) : s.type === undefined ? [] : [s.type];
  if (types.includes('array')) return 'array';
  if (types.includes('object')) return 'object';
  return types.some((t) => SINGLE_TYPES.has(t as string)) ? 'value' : undefined;
}

/**
 * Shapes worked out, by schema: a dereferenced document shares one object wherever a `$ref` named
 * it (`{l: A, r: A}` at each of 16 levels), which a walk without it would visit 2^16 times.
 * `null`: being worked out (a recursive schema), or no shape told.
 */
const shapes = new WeakMap<object, Shape | null>();

/** The shape `s` says, or undefined when it does not say (no type anywhere) or says two (an allOf of an object and an array). */
export function shapeOf(s: Schema): Shape | undefined {
  if (!isSchema(s)) return undefined;
  const known = shapes.get(s);
  if (known !== undefined) return known ?? undefined;
  shapes.set(s, null);
  const shape = combinedShape(s);
  shapes.set(s, shape ?? null);
  return shape;
}

function combinedShape(s: Record<string, unknown>): Shape | undefined {
  const own = ownShape(s);
  if (own !== undefined) return own;
  let all: Shape | undefined;
  if (Array.isArray(s.allOf)) {
    for (const member of s.allOf) {
      const shape = shapeOf(member as Schema);
      if (shape === undefined) continue;
      if (all !== undefined && all !== shape) return undefined;
      all = shape;
    }
  }
  for (const k of ['oneOf', 'anyOf']) {
    const branches = s[k];
    if (!Array.isArray(branches) || branches.length === 0) continue;
    // A branch that admits null alone (3.0's `nullable: true` beside a `$ref` is read as
    // `anyOf: [{$ref}, {enum: [null]}]`, 3.1 writes `{type: 'null'}`) says nothing of the shape
    // of any other value: the others decide. Counted, `{$ref: Filter, nullable: true}` was no
    // object, and its deepObject parameter was refused at load.
    const structured = branches.filter((b) => !onlyNull(b));
    const found = new Set((structured.length > 0 ? structured : branches).map((b) => shapeOf(b as Schema)));
    const [only] = found;
    if (found.size !== 1 || only === undefined) continue;
    if (all !== undefined && all !== only) return undefined;
    all = only;
  }
  return all;
}

export const isArraySchema = (s: Schema) => shapeOf(s) === 'array';
export const isObjectSchema = (s: Schema) => shapeOf(s) === 'object';

/** `s` and the schemas that apply to the same value as alternatives or together: its allOf, oneOf and anyOf, at any depth. */
export function sameValue(s: Schema): Record<string, unknown>[] {
  const seen = new Set<Record<string, unknown>>();
  const stack: unknown[] = [s];
  while (stack.length > 0) {
    const next = stack.pop();
    if (!isSchema(next) || seen.has(next)) continue;
    seen.add(next);
    for (const k of ['allOf', 'oneOf', 'anyOf']) if (Array.isArray(next[k])) stack.push(...(next[k] as unknown[]));
  }
  return [...seen];
}

/**
 * An object's declared properties, from every schema that applies to it (allOf, oneOf, anyOf): each
 * name with its schemas. An exploded object's properties are query keys of their own.
 */
export function objectPropertiesOf(s: Schema): Map<string, Record<string, unknown>[]> {
  const out = new Map<string, Record<string, unknown>[]>();
  for (const member of sameValue(s)) {
    if (!isSchema(member.properties)) continue;
    for (const [name, schema] of Object.entries(member.properties)) {
      if (!isSchema(schema)) continue;
      const list = out.get(name);
      if (list) list.push(schema);
      else out.set(name, [schema]);
    }
  }
  return out;
}

/** The names among `properties` (objectPropertiesOf) whose value is an array by some schema of theirs: copies of such a property are its items. */
export function arrayPropertiesOf(properties: ReadonlyMap<string, readonly Record<string, unknown>[]>): Set<string> {
  return new Set([...properties].filter(([, schemas]) => schemas.some(isArraySchema)).map(([name]) => name));
}

/**
 * Whether an object takes properties it does not name, by saying so: `additionalProperties` or
 * `unevaluatedProperties` true or a schema, or `patternProperties` (a free-form object, a map).
 * An exploded form object of that kind owns the query keys no other parameter does.
 */
export function takesOtherProperties(s: Schema): boolean {
  return sameValue(s).some(
    (m) =>
      m.additionalProperties === true ||
      isSchema(m.additionalProperties) ||
      m.unevaluatedProperties === true ||
      isSchema(m.unevaluatedProperties) ||
      (isSchema(m.patternProperties) && Object.keys(m.patternProperties).length > 0),
  );
}
