/**
 * A JSON schema as a check of the values a document holds, not of the ones it lacks: for a JSON
 * document sent under another type (json-as-other.ts) and for the value under a dotted member name
 * (dotted-names.ts), where a missing member gives the reader nothing the schema forbids, so only a
 * present value the schema forbids is refused (review rt27 F3, F4).
 *
 * - `required` and `dependentRequired` are dropped, and `minProperties`, `minItems`, `contains` and
 *   `minContains`: each asks for values that are not there (`maxContains` goes with `contains`).
 * - `oneOf` becomes `anyOf`: branches told apart by their required members all fit a document that
 *   has none of them, and a value one branch allows is allowed.
 * - `not` and `if` are kept as they are: without `required` they would mean the opposite
 *   (the discriminator's `if: {required: [petType], …}` in discriminator.ts).
 *
 * Compiled once at startup, beside the schema itself, by ajv with allErrors off like the others.
 * Not the schema as it is with its errors filtered: ajv stops at the first error, which may be a
 * `required` hiding a forbidden `role`; with allErrors on, an `anyOf`/`oneOf` error does not say
 * whether a branch failed for a missing member, and collecting every error of a 10 MiB document
 * costs an object per error. Cycles and shared objects are kept (one copy per object), the
 * document's objects are not changed.
 */
import { mapSubschemas, type Schema } from './subschemas.js';

const DROPPED = ['required', 'dependentRequired', 'minProperties', 'minItems', 'contains', 'minContains', 'maxContains'];
/** Subschemas whose meaning `required` decides the other way round: kept whole. */
const KEPT = new Set(['not', 'if']);

export function presentValuesOnly(root: Schema): Schema {
  const copies = new Map<Schema, Schema>();
  const pending: Schema[] = [];
  const copyOf = (s: Schema): Schema => {
    let copy = copies.get(s);
    if (copy === undefined) {
      copies.set(s, (copy = {}));
      pending.push(s);
    }
    return copy;
  };
  const top = copyOf(root);
  // Iterative: a dereferenced document may nest deep, or contain itself.
  while (pending.length > 0) {
    const s = pending.pop() as Schema;
    const copy = copies.get(s) as Schema;
    Object.assign(
      copy,
      mapSubschemas(s, (child, path) => (KEPT.has(path) ? child : copyOf(child))),
    );
    for (const k of DROPPED) delete copy[k];
    if (Array.isArray(copy.oneOf)) {
      const branches = copy.oneOf;
      delete copy.oneOf;
      if (copy.anyOf === undefined) copy.anyOf = branches;
      else copy.allOf = [...(Array.isArray(copy.allOf) ? (copy.allOf as unknown[]) : []), { anyOf: branches }];
    }
  }
  return top;
}
