/**
 * The WAF engine: libddwaf (@datadog/native-appsec, with libinjection's SQLi and XSS detectors)
 * loaded once with a compiled ruleset (src/stages/waf-rules); one context per inspection, a time
 * budget per run, and the first match mapped back to its rule, attack class and parameter path.
 */
import { createRequire } from 'node:module';
import { wafBatches } from './waf-input.js';

type DdwafModule = typeof import('@datadog/native-appsec');
// A native addon: loaded only when the waf stage is configured.
const loadDdwaf = () => createRequire(import.meta.url)('@datadog/native-appsec') as DdwafModule;

export type AttackClass = 'sqli' | 'xss' | 'traversal' | 'cmdi' | 'ssrf' | 'nosqli';

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
}

export interface WafEngine {
  /** The first match, `timeout` when the budget ran out first, or undefined for clean input. */
  inspect(texts: readonly string[]): WafMatch | 'timeout' | undefined;
  dispose(): void;
}

export function createWafEngine(options: { rules: WafRuleset; budgetMicros: number }): WafEngine {
  const { DDWAF } = loadDdwaf();
  const { ruleset, members } = options.rules;
  const waf = new DDWAF(ruleset, 'warden/waf-rules');
  /** The Warden rule behind a libddwaf match: the member of a merged group whose pattern matches the value. */
  const ruleOf = (ddwafRule: string, value: unknown): { id: string; class: AttackClass } => {
    const group = members.get(ddwafRule) ?? [];
    const text = typeof value === 'string' ? value : '';
    return (group.length === 1 ? group[0] : (group.find((m) => m.pattern?.test(text)) ?? group[0])) ?? { id: ddwafRule, class: 'sqli' };
  };
  const runOnce = (batch: string[][], budgetMicros: number) => {
    const context = waf.createContext();
    try {
      return context.run({ persistent: { 'warden.values': batch } }, budgetMicros);
    } finally {
      context.dispose();
    }
  };
  return {
    inspect(texts) {
      if (texts.length === 0) return undefined;
      let batchStart = 0;
      // One budget for the whole input, however many runs it takes.
      const deadline = performance.now() + options.budgetMicros / 1000;
      for (const batch of wafBatches(texts)) {
        const left = Math.floor((deadline - performance.now()) * 1000);
        if (left <= 0) return 'timeout';
        let result = runOnce(batch, left);
        // A wall-clock budget is also spent by a GC pause or the OS scheduler: one retry tells a
        // stall from input that is really too slow to inspect.
        if (result.timeout) result = runOnce(batch, options.budgetMicros);
        if (result.timeout) return 'timeout';
        const event = result.events?.[0] as
          { rule?: { id?: string }; rule_matches?: { parameters?: { key_path?: (string | number)[]; value?: unknown }[] }[] } | undefined;
        if (event?.rule?.id) {
          const match = event.rule_matches?.[0]?.parameters?.[0];
          const keyPath = match?.key_path ?? [];
          const index = batchStart + Number(keyPath[0] ?? 0) * 256 + Number(keyPath[1] ?? 0);
          const rule = ruleOf(event.rule.id, match?.value);
          return { rule: rule.id, class: rule.class, index };
        }
        batchStart += batch.reduce((n, row) => n + row.length, 0);
      }
      return undefined;
    },
    dispose: () => waf.dispose(),
  };
}
