/**
 * Strings libddwaf has found clean, remembered so that it does not inspect them again. Most of an
 * API's inputs repeat: the same User-Agent, Origin and Referer from each client, enum values, ids,
 * field names. Each string costs libddwaf 3–4 µs (most of it converting it from JavaScript), a
 * Set lookup a fraction of that.
 *
 * Sound only because every rule tests one string (`verdictIsPerString`, and see waf-batch.ts): a
 * string's verdict does not depend on the strings beside it, its parameter path or its request,
 * so a string found clean once is clean wherever it comes back, for the same ruleset. Only a clean
 * verdict is remembered; a match or a timeout never is.
 *
 * Bounded: at most `maxEntries` strings of at most `maxLength` characters; the strings not used
 * for longest are forgotten first. A flood of new strings only brings back the cost of inspecting them all.
 */

export interface UnknownTexts {
  readonly texts: readonly string[];
  /** Where each of `texts` sits in the texts asked about; undefined when they are those texts. */
  readonly at: readonly number[] | undefined;
}

export interface CleanStrings {
  /** The texts not known to be clean. */
  unknownOf(texts: readonly string[]): UnknownTexts;
  /** Texts libddwaf found clean together. */
  remember(texts: readonly string[]): void;
  readonly size: number;
}

/**
 * A string of its own. A string cut from a larger one (a cookie value out of its Cookie header, a
 * slice of the body) may share the larger one's memory in V8, so remembering it would keep the
 * whole header alive: 4 096 values cut from 16 KiB headers held 63 MiB instead of 0.3
 * (`waf-clean-strings.test.ts`). A string parsed from JSON is always new. Only a string not yet
 * known is copied, about 0.25 µs for a short one (by hand).
 */
const ownCopy = (text: string): string => JSON.parse(JSON.stringify(text)) as string;

export function createCleanStrings(options: { maxEntries: number; maxLength: number }): CleanStrings {
  // Two generations, each up to half the bound: when the young one is full the old one is
  // dropped whole. Deleting the oldest entry of one Set at each insertion cost about 4 µs a
  // request when no string repeats (by hand; builds.js --unique 0.949, performance.md).
  const half = Math.ceil(options.maxEntries / 2);
  let young = new Set<string>();
  let old = new Set<string>();
  const isKnown = (text: string): boolean => {
    if (young.has(text)) return true;
    if (!old.has(text)) return false;
    add(ownCopy(text)); // still in use: carried into the young generation
    return true;
  };
  const add = (text: string): void => {
    if (young.size >= half) {
      old = young;
      young = new Set();
    }
    young.add(text);
  };
  return {
    unknownOf(texts) {
      // Built at the first known text: a request with none known costs only the lookups.
      let unknown: { texts: string[]; at: number[] } | undefined;
      for (let i = 0; i < texts.length; i++) {
        const text = texts[i] as string;
        // Longer than is remembered: no lookup (each hashes the whole string; a long value's pieces are 4 096 each).
        if (text.length <= options.maxLength && isKnown(text)) {
          unknown ??= { texts: texts.slice(0, i), at: Array.from({ length: i }, (_, j) => j) };
        } else if (unknown !== undefined) {
          unknown.texts.push(text);
          unknown.at.push(i);
        }
      }
      return unknown ?? { texts, at: undefined };
    },
    remember(texts) {
      if (options.maxEntries === 0) return;
      for (const text of texts) if (text.length <= options.maxLength && !young.has(text)) add(ownCopy(text));
    },
    get size() {
      return young.size + old.size;
    },
  };
}

type LibddwafRule = { conditions?: { parameters?: { inputs?: unknown[] } }[] };

/**
 * Whether every rule of a libddwaf ruleset is one condition on one input: then a request matches
 * exactly when one of its strings does, which is what remembering clean strings relies on.
 */
export function verdictIsPerString(ruleset: object): boolean {
  const rules = (ruleset as { rules?: LibddwafRule[] }).rules;
  return Array.isArray(rules) && rules.every((r) => r.conditions?.length === 1 && r.conditions[0]?.parameters?.inputs?.length === 1);
}
