/**
 * The WAF engine: libddwaf (@datadog/native-appsec, with libinjection's SQLi and XSS detectors)
 * loaded once with Warden's ruleset for a paranoia level; one context per inspection, a time
 * budget per run, and the first match mapped back to its rule, attack class and parameter path.
 */
import { createRequire } from 'node:module';
import { WAF_RULES, wafRuleset, type WafRule } from '../stages/waf-rules/rules.js';
import { wafBatches, type WafTexts } from './waf-input.js';

type DdwafModule = typeof import('@datadog/native-appsec');
// A native addon: loaded only when the waf stage is configured.
const loadDdwaf = () => createRequire(import.meta.url)('@datadog/native-appsec') as DdwafModule;

export interface WafMatch {
  readonly rule: string;
  readonly class: WafRule['class'];
  readonly path: string;
}

export interface WafEngine {
  /** The first match, `timeout` when the budget ran out first, or undefined for clean input. */
  inspect(input: WafTexts): WafMatch | 'timeout' | undefined;
  dispose(): void;
}

const RULE_CLASS = new Map(WAF_RULES.map((r) => [r.id, r.class]));

export function createWafEngine(options: { paranoia: number; excludedRules: ReadonlySet<string>; budgetMicros: number }): WafEngine {
  const { DDWAF } = loadDdwaf();
  const waf = new DDWAF(wafRuleset(options.paranoia, options.excludedRules), 'warden/waf-rules');
  return {
    inspect(input) {
      if (input.texts.length === 0) return undefined;
      let batchStart = 0;
      for (const batch of wafBatches(input.texts)) {
        const context = waf.createContext();
        try {
          const result = context.run({ persistent: { 'warden.values': batch } }, options.budgetMicros);
          if (result.timeout) return 'timeout';
          const event = result.events?.[0] as
            { rule?: { id?: string }; rule_matches?: { parameters?: { key_path?: (string | number)[] }[] }[] } | undefined;
          if (event?.rule?.id) {
            const keyPath = event.rule_matches?.[0]?.parameters?.[0]?.key_path ?? [];
            const index = batchStart + Number(keyPath[0] ?? 0) * 256 + Number(keyPath[1] ?? 0);
            return { rule: event.rule.id, class: RULE_CLASS.get(event.rule.id) ?? 'sqli', path: input.paths[index] ?? '/' };
          }
        } finally {
          context.dispose();
        }
        batchStart += batch.reduce((n, row) => n + row.length, 0);
      }
      return undefined;
    },
    dispose: () => waf.dispose(),
  };
}
