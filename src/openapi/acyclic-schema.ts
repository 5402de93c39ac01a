/**
 * A schema ajv can compile, from one of the dereferenced document (document.ts replaces every $ref
 * with the object it names), so that one object may be reached from many places. ajv walks a
 * schema as a tree and compiles an object once per path to it:
 * - an object that contains itself (a User whose `friends` are Users) overflowed the stack, and
 *   such a document could not be used at all;
 * - components used twice per level (A_i = {l: A_{i-1}, r: A_{i-1}}) doubled the work per level:
 *   a 2 KB document of 16 levels took `config check` 65 s, a reload to 15 levels held the event
 *   loop 15–31 s, and the validator it built overflowed the stack on every call (docs/adversarial.md
 *   defect 117).
 * So each schema reached more than once that holds schemas of its own becomes a definition, named
 * by a `$ref` wherever it is used, and ajv compiles it once (a small one without $refs it still
 * inlines, as before). A shared leaf (`{type: string}`) costs the same wherever it is and stays.
 * Only schemas are shared so, never a keyword's value (`enum`, `example`). A schema that shares
 * nothing is returned unchanged.
 *
 * A schema of more than MAX_SUBSCHEMAS distinct subschemas is refused (SchemaTooLarge): its
 * validator would take seconds to build, on the event loop when it is a reload.
 */
import { forEachSubschema, isSchema, mapSubschemas, type Schema } from './subschemas.js';

/**
 * Far beyond a real API's schema (an operation's body has tens to hundreds), and compiled by ajv in
 * about a second on a busy 2-core host (4 000 took 0.6 s; an object of 4 000 properties overflowed
 * ajv's own stack, which is refused too, as a schema that cannot be compiled).
 */
export const MAX_SUBSCHEMAS = 10_000;

export class SchemaTooLarge extends Error {
  constructor(readonly count: number) {
    super(`has more than ${MAX_SUBSCHEMAS} distinct subschemas; a validator so large is not built (split the schema)`);
    this.name = 'SchemaTooLarge';
  }
}

/** How many ways each subschema is reached (2 for a shared one, or one that contains itself). Iterative: a document may nest deep. */
function reachCounts(root: Schema): Map<Schema, number> {
  const reached = new Map<Schema, number>();
  const stack: Schema[] = [root];
  while (stack.length > 0) {
    const s = stack.pop() as Schema;
    const n = reached.get(s) ?? 0;
    reached.set(s, n + 1);
    if (n > 0) continue;
    if (reached.size > MAX_SUBSCHEMAS) throw new SchemaTooLarge(reached.size);
    forEachSubschema(s, (child) => stack.push(child));
  }
  return reached;
}

function hasSubschemas(schema: Schema): boolean {
  let found = false;
  forEachSubschema(schema, () => (found = true));
  return found;
}

export function acyclicSchema<T>(schema: T): T {
  if (!isSchema(schema)) return schema;
  const shared = new Set<Schema>();
  for (const [s, n] of reachCounts(schema)) if (n > 1 && hasSubschemas(s)) shared.add(s);
  if (shared.size === 0) return schema;
  const names = new Map<Schema, string>();
  const definitions: Record<string, unknown> = {};
  const copy = (node: Schema): unknown => {
    if (!shared.has(node)) return hasSubschemas(node) ? mapSubschemas(node, copy) : node;
    let name = names.get(node);
    if (name === undefined) {
      name = `shared${names.size}`;
      names.set(node, name);
      definitions[name] = mapSubschemas(node, copy);
    }
    return { $ref: `#/definitions/${name}` };
  };
  // The definitions sit beside the schema, not in it: its own keywords (a `definitions` of its own) stay as they are.
  return { allOf: [copy(schema)], definitions } as T;
}
