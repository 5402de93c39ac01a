/**
 * Whether a name in a minted token reads as one of the names this sidecar writes in a namespace of
 * its own (`client:<id>` for a client-credentials caller, `spiffe://…` for a verified workload) to a
 * backend that trims and case-folds what it compares: `" client:shop-web"`, `"\u00a0client:…"`,
 * `"Client:shop-web"`, `"clıent:…"` or `"clİent:…"` (dotless ı, dotted İ: Java's equalsIgnoreCase) or `"SPIFFE://…"` would be
 * that client or workload to it (docs/adversarial.md 175, 272).
 */
import { foldCase } from '../openapi/case-variants.js';

/** Leading whitespace (Unicode's, as `\s` has it), C0 and C1 control characters and DEL: what String.trim, strip and Trim take off. */
// eslint-disable-next-line no-control-regex -- control characters a backend may trim
const LEADING_TRIMMED = /^[\s\x00-\x1f\x7f-\x9f]*/;

/**
 * A test for names in namespace `prefix` (given in lower case, as foldCase leaves it). The prefix's
 * length of the trimmed name is folded: folding shortens a string only where it holds `i` and a
 * combining dot above (read as `i`, foldCase), two characters no char-by-char comparison reads as
 * the prefix's one `i`, so that is enough.
 */
export function namespaceReading(prefix: string): (name: string) => boolean {
  if (foldCase(prefix) !== prefix) throw new Error(`namespace prefix ${JSON.stringify(prefix)} must be case-folded`);
  return (name) => {
    const start = LEADING_TRIMMED.exec(name)?.[0].length ?? 0;
    return foldCase(name.slice(start, start + prefix.length)).startsWith(prefix);
  };
}
