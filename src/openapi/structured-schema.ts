/**
 * Whether a body schema describes structured data (an object or an array) rather than bytes (an
 * upload's `type: string, format: binary`) or anything (`{}`). Such a schema can be checked only on
 * a body Warden parses (JSON, a form, multipart/form-data): under a range key (`*\/*`, `text/*`) a
 * body in another type skipped it, and backends that parse whatever arrives as JSON
 * (`express.json({type: '*\/*'})`) read it as the object the schema limits.
 */
import { isArraySchema, isObjectSchema } from './schema-types.js';
import { isSchema, type Schema } from './subschemas.js';

/** Keywords that constrain only objects or arrays: a schema with one means to describe them. */
const STRUCTURE_KEYWORDS = [
  'properties',
  'patternProperties',
  'additionalProperties',
  'unevaluatedProperties',
  'propertyNames',
  'required',
  'minProperties',
  'maxProperties',
  'dependentRequired',
  'dependentSchemas',
  'dependencies',
  'discriminator',
  'items',
  'prefixItems',
  'additionalItems',
  'contains',
  'minItems',
  'maxItems',
  'uniqueItems',
  'unevaluatedItems',
];

/** The branches whose structure is the schema's own: combinators, and a conditional's outcomes. */
const BRANCH_LISTS = ['allOf', 'anyOf', 'oneOf'];
const BRANCHES = ['then', 'else'];

export function describesStructuredData(schema: unknown): boolean {
  if (!isSchema(schema)) return false;
  const seen = new Set<Schema>();
  const stack: Schema[] = [schema];
  while (stack.length > 0) {
    const s = stack.pop() as Schema;
    if (seen.has(s)) continue; // a recursive schema (acyclic-schema.ts)
    seen.add(s);
    if (isObjectSchema(s) || isArraySchema(s) || STRUCTURE_KEYWORDS.some((k) => s[k] !== undefined)) return true;
    for (const k of BRANCH_LISTS) if (Array.isArray(s[k])) for (const branch of s[k] as unknown[]) if (isSchema(branch)) stack.push(branch);
    for (const k of BRANCHES) if (isSchema(s[k])) stack.push(s[k]);
  }
  return false;
}
