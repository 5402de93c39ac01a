import type { ErrorObject } from 'ajv';
import { MAX_JSON_DEPTH } from '../net/json-body.js';

/** A request's first departure from its operation's schema, as the problem document reports it. */
export interface Violation {
  /** Where: `/query/limit`, `/header/x-trace`, `/body/items/0/name`. */
  readonly pointer: string;
  readonly message: string;
  /** The refusal's rule when not `openapi.<location>` (`body.json_as_other`: json-as-other.ts). */
  readonly rule?: string;
}

/** ajv's first error as a violation under `prefix` (`/body`, `/query/filter`). */
export function firstViolation(errors: readonly ErrorObject[] | null | undefined, prefix = ''): Violation {
  const e = errors?.[0];
  if (!e) return { pointer: prefix || '/', message: 'is invalid' };
  const where =
    e.keyword === 'required' ? `${e.instancePath}/${String((e.params as { missingProperty: string }).missingProperty)}` : e.instancePath;
  const message = e.keyword === 'required' ? 'is required' : (e.message ?? 'is invalid');
  return { pointer: prefix + where, message: message.slice(0, 200) };
}

/** A name a case-insensitive backend would bind to `declared` (case-variants.ts). */
export function caseVariant(pointer: string, declared: string): Violation {
  return { pointer, message: `differs from the declared name ${JSON.stringify(declared)} only in letter case` };
}

/** A name a backend ignoring letter case and `_`/`-` would bind to `declared` (pydantic's populate_by_name; case-variants.ts). */
export function spellingVariant(pointer: string, declared: string): Violation {
  return {
    pointer,
    message: `differs from the declared name ${JSON.stringify(declared)} only in letter case and separators (pydantic's populate_by_name binds it)`,
  };
}

/** A name found by NameReadings, with the message that says how it differs. */
export const nameVariant = (pointer: string, declared: string, caseOnly: boolean): Violation =>
  caseOnly ? caseVariant(pointer, declared) : spellingVariant(pointer, declared);

/**
 * A JSON member named as a dotted path into the schema (dotted-names.ts); `why`: what the schema
 * there says of its value (absent: refused by its name, the value not checked).
 */
export const dottedPath = (pointer: string, path: string, why?: string): Violation => {
  // A recursive schema declares paths of any length: the message stays short.
  const shown = path.length > 100 ? `${path.slice(0, 100)}…` : path;
  const read = `is read as the property ${JSON.stringify(shown)} by Laravel's Arr::get/has (all(['${shown}']), has()) and lodash's _.get/_.has, which take a member named as the dotted path first`;
  return { pointer, message: why === undefined ? read : `${read}; there, its value ${why}` };
};

/** A member CaseVariantFinder found, with the message that says how it differs. */
export const memberVariant = (v: { pointer: string; declared: string; caseOnly: boolean; dotted?: true; why?: string }): Violation =>
  v.dotted ? dottedPath(v.pointer, v.declared, v.why) : nameVariant(v.pointer, v.declared, v.caseOnly);

/** A JSON document nested deeper than validation reads (MAX_JSON_DEPTH in net/json-body.ts). */
export const tooDeep = (pointer: string): Violation => ({
  pointer,
  message: `nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`,
});
