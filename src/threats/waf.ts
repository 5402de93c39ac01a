/**
 * The WAF engine: libddwaf (@datadog/native-appsec, with libinjection's SQLi and XSS detectors)
 * loaded once with a compiled ruleset (src/stages/waf-rules); one context per inspection, a time
 * budget per run, and the first match mapped back to its rule, attack class and parameter path.
 */
import { createRequire } from 'node:module';
import { WAF_MAX_CONTAINER, WAF_VALUES, wafBatches } from './waf-input.js';
import { createWafBatcher } from './waf-batch.js';
import { createCleanStrings, verdictIsPerString, type UnknownTexts } from './waf-clean-strings.js';

type DdwafModule = typeof import('@datadog/native-appsec');
// A native addon: loaded only when the waf stage is configured.
const loadDdwaf = () => createRequire(import.meta.url)('@datadog/native-appsec') as DdwafModule;

export type AttackClass = 'sqli' | 'xss' | 'traversal' | 'cmdi' | 'ssrf' | 'nosqli' | 'prototype_pollution';

export interface WafMatch {
  readonly rule: string;
  readonly class: AttackClass;
  /** The matching string's index in the inspected texts. */
  readonly index: number;
}

/** A libddwaf ruleset document and, per libddwaf rule id, the rules behind it (see wafRuleset). */
export interface WafRuleset {
  readonly ruleset: object;
  readonly members: ReadonlyMap<
    string,
    readonly { readonly id: string; readonly class: AttackClass; readonly pattern: RegExp | undefined }[]
  >;
  /** Inputs of transformed rules, each fed only the strings it admits (see Transformed in waf-rules). */
  readonly lanes: readonly { readonly address: string; readonly admits: (text: string) => boolean }[];
}

/** The first match, `timeout` when the budget ran out first, or undefined for clean input. */
export type WafFound = WafMatch | 'timeout' | undefined;

export interface WafEngine {
  /** One request's verdict, inspected now. */
  inspect(texts: readonly string[]): WafFound;
  /**
   * The same verdict, with the requests of one event-loop turn inspected in one libddwaf call
   * (see waf-batch.ts), and strings found clean before are not inspected again
   * (waf-clean-strings.ts). Synchronous when nothing is left to inspect or too much to batch.
   */
  inspectSoon(texts: readonly string[]): WafFound | Promise<WafFound>;
  dispose(): void;
}

/** One address's strings for a run, and where each sits in the inspected texts. */
interface WafPart {
  readonly address: string;
  readonly texts: readonly string[];
  /** The index in the inspected texts of each entry; absent when the part is the texts themselves. */
  readonly at: readonly number[] | undefined;
}

function partsOf(texts: readonly string[], lanes: WafRuleset['lanes']): WafPart[] {
  const parts: WafPart[] = [{ address: WAF_VALUES, texts, at: undefined }];
  for (const lane of lanes) {
    const laneTexts: string[] = [];
    const at: number[] = [];
    for (let i = 0; i < texts.length; i++) {
      const text = texts[i] as string;
      if (lane.admits(text)) {
        laneTexts.push(text);
        at.push(i);
      }
    }
    if (laneTexts.length > 0) parts.push({ address: lane.address, texts: laneTexts, at });
  }
  return parts;
}

/** A libddwaf run's input, and the inspected text a match's address and key path point at. */
interface WafRun {
  readonly input: Record<string, readonly string[] | readonly string[][]>;
  textIndex(address: string, keyPath: readonly (string | number)[]): number;
}

/**
 * The runs that inspect every part. Usually one, with flat lists (each nesting level cost the
 * binding ~2 µs in a one-off loop measurement); parts over 256 strings go in libddwaf-sized
 * containers, a run per batch.
 */
function runsOf(parts: readonly WafPart[]): WafRun[] {
  if (parts.every((p) => p.texts.length <= WAF_MAX_CONTAINER)) {
    const input: Record<string, readonly string[]> = {};
    for (const p of parts) input[p.address] = p.texts;
    return [
      {
        input,
        textIndex(address, keyPath) {
          const i = Number(keyPath[0] ?? 0);
          const at = parts.find((p) => p.address === address)?.at;
          return at ? (at[i] ?? 0) : i;
        },
      },
    ];
  }
  const runs: WafRun[] = [];
  for (const p of parts) {
    let start = 0;
    for (const batch of wafBatches(p.texts)) {
      const base = start;
      runs.push({
        input: { [p.address]: batch },
        textIndex(_address, keyPath) {
          const i = base + Number(keyPath[0] ?? 0) * WAF_MAX_CONTAINER + Number(keyPath[1] ?? 0);
          return p.at ? (p.at[i] ?? 0) : i;
        },
      });
      start += batch.reduce((n, row) => n + row.length, 0);
    }
  }
  return runs;
}

type WafEvent = {
  rule?: { id?: string };
  rule_matches?: { parameters?: { address?: string; key_path?: (string | number)[]; value?: unknown }[] }[];
};

/**
 * Clean strings remembered per engine (waf-clean-strings.ts; `threats.waf.remember_clean`, 4 096 by
 * default: about 2.2 MiB at worst) are at most 256 characters long. Longer strings rarely repeat.
 */
const CLEAN_STRINGS = 4096;
const CLEAN_STRING_LENGTH = 256;

export function createWafEngine(options: {
  rules: WafRuleset;
  budgetMicros: number;
  /** How many clean strings to remember (0: none). */
  cleanStrings?: number;
}): WafEngine {
  const { DDWAF } = loadDdwaf();
  const { ruleset, members, lanes } = options.rules;
  const waf = new DDWAF(ruleset, 'warden/waf-rules');
  /** The Warden rule behind a libddwaf match: the member of a merged group whose pattern matches the value. */
  const ruleOf = (ddwafRule: string, value: unknown): { id: string; class: AttackClass } => {
    const group = members.get(ddwafRule) ?? [];
    const text = typeof value === 'string' ? value : '';
    return (group.length === 1 ? group[0] : (group.find((m) => m.pattern?.test(text)) ?? group[0])) ?? { id: ddwafRule, class: 'sqli' };
  };
  const runOnce = (input: WafRun['input'], budgetMicros: number) => {
    const context = waf.createContext();
    try {
      return context.run({ persistent: input }, budgetMicros);
    } finally {
      context.dispose();
    }
  };
  /** A run's first event: the rule and the inspected text it matched. */
  const matchOf = (run: WafRun, result: { events?: object[] }): WafMatch | undefined => {
    const event = result.events?.[0] as WafEvent | undefined;
    if (!event?.rule?.id) return undefined;
    const match = event.rule_matches?.[0]?.parameters?.[0];
    const index = run.textIndex(match?.address ?? WAF_VALUES, match?.key_path ?? []);
    const rule = ruleOf(event.rule.id, match?.value);
    return { rule: rule.id, class: rule.class, index };
  };
  const inspect = (texts: readonly string[]): WafFound => {
    if (texts.length === 0) return undefined;
    // One budget for the whole input, however many runs it takes.
    const deadline = performance.now() + options.budgetMicros / 1000;
    for (const run of runsOf(partsOf(texts, lanes))) {
      const left = Math.floor((deadline - performance.now()) * 1000);
      if (left <= 0) return 'timeout';
      let result = runOnce(run.input, left);
      // A wall-clock budget is also spent by a GC pause or the OS scheduler: one retry tells a
      // stall from input that is really too slow to inspect.
      if (result.timeout) result = runOnce(run.input, options.budgetMicros);
      if (result.timeout) return 'timeout';
      const match = matchOf(run, result);
      if (match) return match;
    }
    return undefined;
  };
  const batcher = createWafBatcher<WafMatch | 'timeout'>(
    {
      inspect,
      allClean(texts) {
        const [run, more] = runsOf(partsOf(texts, lanes));
        if (!run || more) return false;
        const result = runOnce(run.input, options.budgetMicros);
        return !result.timeout && !result.events?.length;
      },
    },
    WAF_MAX_CONTAINER,
  );
  // None for a ruleset whose verdicts are not per string, or when configured off.
  const remembered = verdictIsPerString(ruleset) ? (options.cleanStrings ?? CLEAN_STRINGS) : 0;
  const clean = remembered > 0 ? createCleanStrings({ maxEntries: remembered, maxLength: CLEAN_STRING_LENGTH }) : undefined;
  /** One batch: on its own past what libddwaf takes in one run, else batched with others. */
  const inspectNow = (texts: readonly string[]) => (texts.length > WAF_MAX_CONTAINER ? inspect(texts) : batcher.inspect(texts));
  /** The verdict on the unknown texts, as a verdict on all of them; clean ones are remembered. */
  const verdictOn = (unknown: UnknownTexts, found: WafFound): WafFound => {
    if (found === undefined) {
      // A body of thousands of strings would flush what the requests before it taught.
      if (unknown.texts.length <= WAF_MAX_CONTAINER) clean?.remember(unknown.texts);
      return undefined;
    }
    if (found === 'timeout' || unknown.at === undefined) return found;
    return { ...found, index: unknown.at[found.index] ?? found.index };
  };
  return {
    inspect,
    inspectSoon(texts) {
      if (texts.length === 0) return undefined;
      if (clean === undefined) return inspectNow(texts);
      const unknown = clean.unknownOf(texts);
      if (unknown.texts.length === 0) return undefined;
      const found = inspectNow(unknown.texts);
      return found instanceof Promise ? found.then((f) => verdictOn(unknown, f)) : verdictOn(unknown, found);
    },
    dispose() {
      batcher.flush();
      waf.dispose();
    },
  };
}
