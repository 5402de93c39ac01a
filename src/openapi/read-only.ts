/**
 * Read-only properties in a request (OpenAPI `readOnly: true`): the server sets them (`id`,
 * `createdAt`, `role`, `balance`) and a request "SHOULD NOT" send them. A backend that binds the
 * whole body to its model (mass assignment, OWASP API3:2023) takes them from the caller; validation
 * that reads readOnly as an annotation, as ajv does, let `{"name":"x","role":"admin"}` through.
 *
 * For a request schema, each property whose schema says readOnly (itself or through `allOf`, where
 * 3.0 documents put it beside a $ref) becomes a schema no value meets, with its own message, and
 * leaves `required`: a read-only property listed there is required in responses only (OpenAPI 3.0
 * § Fixed Fields, readOnly). The document's objects are not changed: shared ones are copied once,
 * cycles kept (the dereferenced document may contain itself), and a schema with no read-only
 * property is returned as it is.
 */
import type { Ajv } from 'ajv';
import { _ } from 'ajv';
import { isSchema, mapSubschemas, someSubschema, type Schema } from './subschemas.js';

/** The keyword that stands for a read-only property's schema in a request schema. */
export const READ_ONLY_KEYWORD = 'x-warden-read-only';

export function addReadOnlyKeyword(ajv: Ajv): void {
  ajv.addKeyword({
    keyword: READ_ONLY_KEYWORD,
    schemaType: 'boolean',
    error: { message: 'is read-only: the server sets it, and a request does not send it' },
    code: (cxt) => cxt.fail(_`true`),
  });
}

/** readOnly on the schema, or on one it is allOf (`allOf: [{$ref: Id}], readOnly: true` or the other way round). */
function isReadOnly(schema: Schema, seen: Set<Schema> = new Set()): boolean {
  if (schema.readOnly === true) return true;
  if (seen.has(schema) || !Array.isArray(schema.allOf)) return false;
  seen.add(schema);
  return schema.allOf.some((part) => isSchema(part) && isReadOnly(part, seen));
}

function readOnlyNames(schema: Schema): string[] {
  const properties = schema.properties;
  if (!isSchema(properties)) return [];
  return Object.keys(properties).filter((name) => {
    const property = properties[name];
    return isSchema(property) && isReadOnly(property);
  });
}

export function refuseReadOnlyProperties(root: Schema): Schema {
  if (!someSubschema(root, (s) => readOnlyNames(s).length > 0)) return root;
  const copies = new Map<Schema, Schema>();
  const copy = (node: Schema): Schema => {
    const done = copies.get(node);
    if (done) return done;
    const out: Schema = {};
    copies.set(node, out);
    Object.assign(out, mapSubschemas(node, copy));
    const names = readOnlyNames(node);
    if (names.length > 0) {
      out.properties = { ...(out.properties as Schema) };
      for (const name of names) (out.properties as Schema)[name] = { [READ_ONLY_KEYWORD]: true };
      if (Array.isArray(node.required)) {
        const required = node.required.filter((name) => !names.includes(name as string));
        // draft-04's meta-schema wants at least one name.
        if (required.length > 0) out.required = required;
        else delete out.required;
      }
    }
    return out;
  };
  return copy(root);
}
