/**
 * Whether a name in a minted token reads as one of the names this sidecar writes in a namespace of
 * its own (`client:<id>` for a client-credentials caller, `spiffe://…` for a verified workload) to a
 * backend that trims, NFKC-normalises and case-folds what it compares: `" client:shop-web"`,
 * `"\u00a0client:…"`, `"Client:shop-web"`, `"clıent:…"` or `"clİent:…"` (dotless ı, dotted İ: Java's
 * equalsIgnoreCase), `"ｃlient:…"`, `"client：…"` (full-width: NFKC, as Django's normalize_username
 * and PRECIS apply it) or `"SPIFFE://…"` would be that client or workload to it (docs/adversarial.md
 * 175, 272).
 */
import { foldCase } from '../openapi/case-variants.js';

/** Leading whitespace (Unicode's, as `\s` has it), C0 and C1 control characters and DEL: what String.trim, strip and Trim take off. */
// eslint-disable-next-line no-control-regex -- control characters a backend may trim
const LEADING_TRIMMED = /^[\s\x00-\x1f\x7f-\x9f]*/;

/**
 * A test for names in namespace `prefix` (given in lower case, as foldCase leaves it, ending in `:`).
 * Runs when a principal is made and on a mint, not per request; still, only a window of the name is
 * normalised (a `sub` may be as long as a 1 MiB introspection answer): NFKC turns each character of
 * a name that reads as the prefix into one letter from at most two UTF-16 units (an astral
 * compatibility letter, `I` + combining dot above), so the window holds the prefix four times over.
 * What follows the window can change only what follows the prefix's last character: `:` composes
 * with no mark. Folding after normalising shortens a string only where it holds `i` and a combining
 * dot above (read as `i`, foldCase), two characters no char-by-char comparison reads as the
 * prefix's one `i`, so the prefix's length of the normalised name is enough.
 */
export function namespaceReading(prefix: string): (name: string) => boolean {
  if (foldCase(prefix) !== prefix) throw new Error(`namespace prefix ${JSON.stringify(prefix)} must be case-folded`);
  if (!prefix.endsWith(':')) throw new Error(`namespace prefix ${JSON.stringify(prefix)} must end in ":"`);
  const window = 4 * prefix.length + 8;
  return (name) => {
    const start = LEADING_TRIMMED.exec(name)?.[0].length ?? 0;
    const normalised = name.slice(start, start + window).normalize('NFKC');
    // Again: NFKC turns some characters into ones a backend trims.
    const from = LEADING_TRIMMED.exec(normalised)?.[0].length ?? 0;
    return foldCase(normalised.slice(from, from + prefix.length)).startsWith(prefix);
  };
}
