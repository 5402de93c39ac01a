#!/usr/bin/env node
// The waf stage's parts on the ~1 KB order body of bench/threats.js, in a loop: building
// libddwaf's input without parameter paths (the request path), the same with paths (what
// exclusions and a match need), the libddwaf run itself, and its cost per request when the
// requests of one event-loop turn share a call (batches of 4 and 8: what src/threats/waf-batch.ts
// runs). Warm CPU caches: in a loaded server a call costs 2-3x more (docs/threats.md).
// Usage: node bench/waf-stage.js [--runs N]
import { parseArgs } from 'node:util';
import { createWafEngine } from '../dist/threats/waf.js';
import { wafRuleset } from '../dist/stages/waf-rules/rules.js';
import { addValue, createWafTexts } from '../dist/threats/waf-input.js';

const { values: opts } = parseArgs({ options: { runs: { type: 'string', default: '20000' } } });
const RUNS = Number(opts.runs);
const order = {
  customer: "O'Brien & Sons, purchasing department",
  note: 'Deliver to the loading dock at the rear of the building; call ahead. '.repeat(3),
  items: Array.from({ length: 12 }, (_, i) => ({ sku: `SKU-${1000 + i}`, quantity: i + 1, price: 9.99 + i })),
};
const limits = { maxEntries: 1000, maxDepth: 20 };
const build = (withPaths) => {
  const t = createWafTexts(withPaths);
  addValue(t, '/body', order, limits);
  addValue(t, '/header/user-agent', 'wrk/4.2', limits);
  return t;
};
const engine = createWafEngine({ rules: wafRuleset(1, new Set()), budgetMicros: 1_000_000 });
const texts = build(false).texts;
const timeUs = (fn) => {
  for (let i = 0; i < Math.min(RUNS, 2000); i++) fn();
  const started = performance.now();
  for (let i = 0; i < RUNS; i++) fn();
  return Math.round(((performance.now() - started) * 1000 * 10) / RUNS) / 10;
};
const result = {
  strings_inspected: texts.length,
  build_without_paths_us: timeUs(() => build(false)),
  build_with_paths_us: timeUs(() => build(true)),
  libddwaf_run_us: timeUs(() => engine.inspect(texts)),
};
for (const n of [4, 8]) {
  const batch = Array.from({ length: n }, () => texts).flat();
  result[`libddwaf_per_request_in_batches_of_${n}_us`] = Math.round((timeUs(() => engine.inspect(batch)) / n) * 10) / 10;
}
engine.dispose();
console.log(JSON.stringify(result));
