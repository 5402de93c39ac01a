/**
 * Where a JSON Schema (draft 4 to 2020-12, as OpenAPI 3.0 and 3.1 use it) holds schemas, for the
 * walks that must tell a schema from a keyword's value (`enum`, `const`, `example`: data, shared
 * or not). The keywords are json-schema-traverse's (which ajv walks by) and 2020-12's it lacks
 * (prefixItems, unevaluated*, dependentSchemas, contentSchema).
 */
export type Schema = Record<string, unknown>;

export const isSchema = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

const ONE = [
  'not',
  'if',
  'then',
  'else',
  'items',
  'additionalItems',
  'additionalProperties',
  'propertyNames',
  'contains',
  'unevaluatedItems',
  'unevaluatedProperties',
  'contentSchema',
];
const LIST = ['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items'];
const MAP = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'dependencies'];

/** Calls `visit` with each subschema of `schema` and its path (`properties/name`, JSON-pointer escaped). */
export function forEachSubschema(schema: Schema, visit: (child: Schema, path: string) => void): void {
  for (const k of ONE) if (isSchema(schema[k])) visit(schema[k], k);
  for (const k of LIST) {
    const list = schema[k];
    if (Array.isArray(list)) list.forEach((child, i) => isSchema(child) && visit(child, `${k}/${i}`));
  }
  for (const k of MAP) {
    const map = schema[k];
    if (!isSchema(map)) continue;
    for (const [name, child] of Object.entries(map)) if (isSchema(child)) visit(child, `${k}/${escapePointer(name)}`);
  }
}

/** Whether `test` holds for `root` or a schema in it, each distinct one tried once (iterative: a document may nest deep, or contain itself). */
export function someSubschema(root: Schema, test: (schema: Schema) => boolean): boolean {
  const seen = new Set<Schema>();
  const stack = [root];
  while (stack.length > 0) {
    const s = stack.pop() as Schema;
    if (seen.has(s)) continue;
    seen.add(s);
    if (test(s)) return true;
    forEachSubschema(s, (child) => stack.push(child));
  }
  return false;
}

/** A shallow copy of `schema` with each subschema replaced by `map(child, path)` (paths as forEachSubschema's); other values are kept as they are. */
export function mapSubschemas(schema: Schema, map: (child: Schema, path: string) => unknown): Schema {
  const out: Schema = { ...schema };
  for (const k of ONE) if (isSchema(schema[k])) out[k] = map(schema[k], k);
  for (const k of LIST) {
    const list = schema[k];
    if (Array.isArray(list)) out[k] = list.map((child: unknown, i) => (isSchema(child) ? map(child, `${k}/${i}`) : child));
  }
  for (const k of MAP) {
    const m = schema[k];
    if (isSchema(m))
      out[k] = Object.fromEntries(
        Object.entries(m).map(([name, child]) => [name, isSchema(child) ? map(child, `${k}/${escapePointer(name)}`) : child]),
      );
  }
  return out;
}

export const escapePointer = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');
