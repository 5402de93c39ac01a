/**
 * A schema ajv can compile from one of the dereferenced document (document.ts replaces every $ref
 * with the object it names). Where the document's schemas are recursive — a User whose `friends`
 * are Users, a comment whose replies are comments — that object contains itself, and ajv, which
 * walks a schema as a tree, overflowed the stack: such a document could not be used at all. Each
 * object that contains itself becomes a definition again, named by a `$ref`; the rest is copied
 * as it is. A schema without cycles is returned unchanged.
 */
type Node = Record<string, unknown> | unknown[];

const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null;

/** Objects reachable from themselves: depth-first, iterative (a document may nest deep). */
function selfContaining(root: unknown): Set<Node> {
  const targets = new Set<Node>();
  if (!isNode(root)) return targets;
  const onPath = new Set<Node>();
  const finished = new Set<Node>();
  const stack: [Node, Iterator<unknown>][] = [[root, Object.values(root)[Symbol.iterator]()]];
  onPath.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as [Node, Iterator<unknown>];
    const next = top[1].next();
    if (next.done) {
      stack.pop();
      onPath.delete(top[0]);
      finished.add(top[0]);
      continue;
    }
    const child = next.value;
    if (!isNode(child) || finished.has(child)) continue;
    if (onPath.has(child)) {
      targets.add(child);
      continue;
    }
    onPath.add(child);
    stack.push([child, Object.values(child)[Symbol.iterator]()]);
  }
  return targets;
}

export function acyclicSchema<T>(schema: T): T {
  const targets = selfContaining(schema);
  if (targets.size === 0) return schema;
  const names = new Map<Node, string>();
  const definitions: Record<string, unknown> = {};
  const copy = (node: unknown): unknown => {
    if (!isNode(node)) return node;
    if (targets.has(node)) {
      let name = names.get(node);
      if (name === undefined) {
        name = `recursive${names.size}`;
        names.set(node, name);
        definitions[name] = copyContents(node);
      }
      return { $ref: `#/definitions/${name}` };
    }
    return copyContents(node);
  };
  const copyContents = (node: Node): unknown =>
    Array.isArray(node) ? node.map(copy) : Object.fromEntries(Object.entries(node).map(([k, v]) => [k, copy(v)]));
  // The definitions sit beside the schema, not in it: its own keywords (a `definitions` of its own) stay as they are.
  return { allOf: [copy(schema)], definitions } as T;
}
