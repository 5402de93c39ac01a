/**
 * Parameters described by `content` in place of `schema` (OpenAPI 3 §4.8.12: one media type and its
 * schema, `?filter={"role":"user"}`). Warden reads JSON ones: the value, decoded, is parsed as a
 * JSON document — strictly, as a body is (json-body.ts) — and checked against the schema as a JSON
 * body is, without coercion. Any other media type, or more than one, is refused at load: Warden
 * could not check the value. Before, such a parameter was checked against `{}`: anything passed.
 */
import { percentDecoded } from '../net/percent-decoded.js';
import { parseJsonBody } from '../net/json-body.js';
import { isJsonMediaType, mediaTypeOf } from '../net/media-type.js';
import { CaseVariantFinder } from './case-variants.js';
import { OpenApiError } from './document.js';
import type { Operation, ParameterObject } from './operations.js';
import type { SchemaCompiler } from './schema-compiler.js';
import { violationOf } from './refused-value.js';
import { memberVariant, tooDeep, type Violation } from './violation.js';

/** Checks one value of the parameter (as the request decoded it), pointing at `pointer` (`/query/filter`). */
export type ContentCheck = (value: string, pointer: string) => Violation | undefined;

/**
 * A cookie's value as cookie parsers give it: percent-escapes decoded, a malformed one kept as sent
 * (querystring's unescape, as the validator reads cookie names and the waf their values).
 */
const cookieDecoded = (value: string): string => (value.includes('%') ? percentDecoded(value) : value);

/**
 * The check of a parameter declared with `content`, or undefined for one with `schema`. Throws
 * OpenApiError, naming the parameter, for content Warden cannot read.
 */
export function compileContentParameter(
  p: ParameterObject,
  op: Operation,
  compiler: SchemaCompiler,
  refuseReadOnly: boolean,
): ContentCheck | undefined {
  if (p.content === undefined) return undefined;
  const label = `parameter "${p.name}" in ${p.in}`;
  const keys = Object.keys(p.content);
  if (keys.length !== 1)
    throw new OpenApiError(
      op.pointer,
      `${label}: content lists ${keys.length} media types (${keys.join(', ')}): a parameter's content has exactly one, and Warden could not tell which a value is in`,
    );
  const key = keys[0] as string;
  if (!isJsonMediaType(mediaTypeOf(key)))
    throw new OpenApiError(
      op.pointer,
      `${label}: content ${JSON.stringify(key)} cannot be checked: Warden reads a parameter's content as JSON only (application/json or +json); describe it with schema instead`,
    );
  const schema = p.content[key]?.schema ?? {};
  const validate = compiler.compile(
    op.dialect,
    schema,
    { coerce: false, refuseReadOnly },
    { pointer: op.pointer, label: `${label}, content ${key}` },
    op.components,
  );
  const names = new CaseVariantFinder(schema);
  const cookie = p.in === 'cookie';
  return (value, pointer) => {
    const json = parseJsonBody(Buffer.from(cookie ? cookieDecoded(value) : value, 'utf8'));
    if (json === undefined) return { pointer, message: 'is not valid JSON' };
    if (json.tooDeep) return tooDeep(pointer);
    const violation = violationOf(validate, json.value, pointer);
    if (violation) return violation;
    const variant = names.find(json.value, pointer);
    return variant && memberVariant(variant);
  };
}
