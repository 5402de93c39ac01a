/**
 * OpenAPI's `discriminator` as plain JSON Schema, for ajv. ajv's own keyword takes only `oneOf`
 * branches that each give the property a `const` or `enum`, and no `mapping`: the shape springdoc,
 * NSwag and openapi-generator emit (branches by $ref, a mapping or none) made the sidecar refuse
 * the document at start (docs/adversarial.md defect 174). And "the one branch that matches" is not
 * how a backend reads the body: Jackson, System.Text.Json and pydantic pick the branch by the
 * property's value, so a body both Cat and Dog accept is a Cat when it says `"kind": "cat"`.
 *
 * So a schema with `discriminator: {propertyName: p, mapping}` becomes: its other keywords, without
 * the `oneOf`/`anyOf` the discriminator chooses in, and
 *   {type: object, required: [p], properties: {p: {type: string, enum: [values]}},
 *    allOf: [{if: {properties: {p: {const: v}}, required: [p]}, then: <v's branch>}, ...]}
 * The values and their branches: each `mapping` entry (a `#/components/schemas/Name` or a bare
 * `Name`); then each branch no entry names, by the `const`/`enum` it gives p, else by its name in
 * components.schemas. Without `oneOf`/`anyOf` (the allOf pattern: the discriminator on a base Pet,
 * `Cat: {allOf: [Pet, ...]}`), the branches are the mapping's and the components whose allOf holds
 * the base, as the specification says.
 *
 * A branch is chosen once per value: inside it, a discriminator on the same property met in place
 * (through allOf, oneOf, ...; not in a property's schema) is dropped with the union it chooses in.
 * That is the base Pet reached again through Cat's allOf, which would otherwise choose Cat again,
 * for ever, on the same body.
 *
 * document.ts dereferences the document, keeping identity: a branch written `$ref: Cat` is the
 * object components.schemas.Cat. A mapping entry that names no component, or a component that is
 * not among the oneOf/anyOf branches (a `$ref` with keywords beside it is a copy), refuses the
 * document at load rather than validating against something the document does not say.
 */
import { MAX_SUBSCHEMAS, SchemaTooLarge } from './acyclic-schema.js';
import { OpenApiError } from './document.js';
import { escapePointer, isSchema, mapSubschemas, someSubschema, type Schema } from './subschemas.js';

/** Keywords that apply their subschemas to the same instance: a branch chosen stays chosen through them. */
const IN_PLACE = new Set(['allOf', 'anyOf', 'oneOf', 'not', 'if', 'then', 'else', 'dependentSchemas', 'dependencies']);

const COMPONENTS = '#/components/schemas/';

const hasDiscriminator = (root: Schema) => someSubschema(root, (s) => s.discriminator !== undefined);

/** The string values a branch's own `const`/`enum` gives the property (in it or its allOf), or undefined. */
function declaredValues(branch: Schema, p: string): string[] | undefined {
  const parts = [branch, ...(Array.isArray(branch.allOf) ? branch.allOf.filter(isSchema) : [])];
  for (const part of parts) {
    const prop = isSchema(part.properties) ? part.properties[p] : undefined;
    if (!isSchema(prop)) continue;
    if (typeof prop.const === 'string') return [prop.const];
    if (Array.isArray(prop.enum)) return prop.enum.filter((v): v is string => typeof v === 'string');
  }
  return undefined;
}

/**
 * `schema` with each discriminator rewritten (a new graph, shared and recursive schemas kept so);
 * `schema` itself when it has none. `components`: the document's components.schemas, dereferenced.
 * `pointer`: where `schema` is, for errors. Throws OpenApiError for a discriminator that cannot be
 * followed, SchemaTooLarge past MAX_SUBSCHEMAS new schemas.
 */
export function rewriteDiscriminators(schema: Schema, components: Readonly<Record<string, unknown>> | undefined, pointer: string): Schema {
  if (!hasDiscriminator(schema)) return schema;
  const byName = new Map<string, Schema>();
  const nameOf = new Map<Schema, string>();
  for (const [name, s] of Object.entries(components ?? {}))
    if (isSchema(s)) {
      byName.set(name, s);
      if (!nameOf.has(s)) nameOf.set(s, name);
    }
  const placeOf = (s: Schema, path: string) => {
    const name = nameOf.get(s);
    return name === undefined ? path : COMPONENTS + escapePointer(name);
  };
  const resolve = (ref: unknown): Schema | undefined => {
    if (typeof ref !== 'string') return undefined;
    if (ref.startsWith(COMPONENTS) && !ref.slice(COMPONENTS.length).includes('/'))
      return byName.get(ref.slice(COMPONENTS.length).replaceAll('~1', '/').replaceAll('~0', '~'));
    return /^[^#/]+$/.test(ref) ? byName.get(ref) : undefined;
  };

  /** Each value and the schema it selects, mapping first. */
  const branchesOf = (node: Schema, p: string, union: 'oneOf' | 'anyOf' | undefined, at: string): Map<string, [Schema, string]> => {
    const d = node.discriminator as Schema;
    const listed = union ? (node[union] as unknown[]).map((b, i) => [b, `${at}/${union}/${i}`] as const) : [];
    const candidates: (readonly [unknown, string])[] = union
      ? listed
      : [...byName].filter(([, s]) => Array.isArray(s.allOf) && s.allOf.includes(node)).map(([n, s]) => [s, COMPONENTS + escapePointer(n)]);
    const values = new Map<string, [Schema, string]>();
    const mapped = new Set<Schema>();
    for (const [value, ref] of Object.entries(isSchema(d.mapping) ? d.mapping : {})) {
      const where = `${at}/discriminator/mapping/${escapePointer(value)}`;
      const target = resolve(ref);
      if (!target)
        throw new OpenApiError(
          where,
          `${JSON.stringify(ref)} names no schema in components.schemas: write "${COMPONENTS}<Name>" or "<Name>" of a schema there`,
        );
      if (union && !listed.some(([b]) => b === target))
        throw new OpenApiError(
          where,
          `${JSON.stringify(ref)} is not one of the ${union} branches: list it there as a $ref with nothing beside it, or correct the mapping`,
        );
      values.set(value, [target, placeOf(target, where)]);
      mapped.add(target);
    }
    const implicit = new Map<string, string>();
    for (const [branch, where] of candidates) {
      if (!isSchema(branch) || mapped.has(branch)) continue;
      const name = nameOf.get(branch);
      for (const value of declaredValues(branch, p) ?? (name === undefined ? [] : [name])) {
        const other = implicit.get(value);
        if (other !== undefined && values.get(value)?.[0] !== branch)
          throw new OpenApiError(where, `selects "${value}" as ${other} does: give the branches distinct values in discriminator.mapping`);
        if (values.has(value)) continue; // a mapping entry wins over a name
        implicit.set(value, where);
        values.set(value, [branch, placeOf(branch, where)]);
      }
    }
    if (values.size === 0)
      throw new OpenApiError(
        `${at}/discriminator`,
        `selects no schema: give discriminator.mapping, or make the ${union ? `${union} branches` : 'subtypes'} named components (${union ? 'by $ref' : 'allOf: [$ref base]'})`,
      );
    return values;
  };

  // One copy of each schema per set of properties already chosen on (usually none, or one).
  const copies = new Map<string, Map<Schema, Schema>>();
  let made = 0;
  const rewrite = (node: Schema, chosen: readonly string[], at: string): Schema => {
    const key = chosen.join('\0');
    let memo = copies.get(key);
    if (!memo) copies.set(key, (memo = new Map<Schema, Schema>()));
    const done = memo.get(node);
    if (done) return done;
    if (++made > MAX_SUBSCHEMAS) throw new SchemaTooLarge(made);
    const out: Schema = {};
    memo.set(node, out); // before the children: a schema may contain itself
    let source = node;
    let selector: Schema | undefined;
    const d = node.discriminator;
    if (d !== undefined) {
      const p = isSchema(d) ? d.propertyName : undefined;
      if (typeof p !== 'string') throw new OpenApiError(`${at}/discriminator`, 'needs propertyName: the name of the property that selects');
      const union = Array.isArray(node.oneOf) ? 'oneOf' : Array.isArray(node.anyOf) ? 'anyOf' : undefined;
      const { discriminator: _, ...rest } = node;
      if (union) delete rest[union];
      source = rest;
      if (!chosen.includes(p)) {
        const inside = [...chosen, p].sort();
        const branches = [...branchesOf(node, p, union, at)];
        selector = {
          type: 'object',
          required: [p],
          properties: { [p]: { type: 'string', enum: branches.map(([v]) => v) } },
          allOf: branches.map(([v, [target, where]]) => ({
            if: { properties: { [p]: { const: v } }, required: [p] },
            then: rewrite(target, inside, where),
          })),
        };
        // 3.0's nullable: null stays allowed (the selector first: its errors are the ones reported).
        // ajv refuses nullable without type: the selector's type is where it applies.
        if (node.nullable === true) {
          selector = { anyOf: [selector, { type: 'null' }] };
          if (rest.type === undefined) delete rest.nullable;
        }
      }
    }
    Object.assign(
      out,
      mapSubschemas(source, (child, path) =>
        rewrite(child, IN_PLACE.has(path.split('/', 1)[0] ?? '') ? chosen : [], placeOf(child, `${at}/${path}`)),
      ),
    );
    if (selector) out.allOf = [...(Array.isArray(out.allOf) ? (out.allOf as unknown[]) : []), selector];
    return out;
  };
  return rewrite(schema, [], pointer);
}
