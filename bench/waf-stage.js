#!/usr/bin/env node
// The waf stage's parts on the ~1 KB order body of bench/threats.js, in a loop: building
// libddwaf's input without parameter paths (the request path), the same with paths (what
// exclusions and a match need), the libddwaf run itself (and, for comparison, with every
// transformer applied to every string instead of lanes), and its cost per request when the
// requests of one event-loop turn share a call (batches of 4 and 8: what src/threats/waf-batch.ts
// runs), and what remembering clean strings saves and costs (per request, building the input included).
// Warm CPU caches: in a loaded server a call costs 2-3x more (docs/threats.md).
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
const withoutLanes = createWafEngine({ rules: wafRuleset(1, new Set(), { lanes: false }), budgetMicros: 1_000_000 });
const texts = build(false).texts;
const prose = Array.from({ length: 40 }, (_, i) => `Customer note number ${i}: please deliver to the rear entrance, ring twice; thanks!`);
const timeUs = (fn) => {
  for (let i = 0; i < Math.min(RUNS, 2000); i++) fn();
  const started = performance.now();
  for (let i = 0; i < RUNS; i++) fn();
  return Math.round(((performance.now() - started) * 1000 * 10) / RUNS) / 10;
};
/** Median of B ÷ A over rounds that alternate A and B: what a drifting host's speed cannot skew. */
const pairedRatio = (a, b, rounds = 21, perRound = Math.max(100, Math.round(RUNS / 20))) => {
  const timeOf = (fn) => {
    const started = performance.now();
    for (let i = 0; i < perRound; i++) fn();
    return performance.now() - started;
  };
  const ratios = [];
  for (let r = 0; r < rounds; r++) {
    const [ta, tb] = r % 2 ? [timeOf(a), timeOf(b)] : [timeOf(b), timeOf(a)].reverse();
    ratios.push(tb / ta);
  }
  ratios.sort((x, y) => x - y);
  return Math.round((ratios[rounds >> 1] ?? 0) * 1000) / 1000;
};
const result = {
  strings_inspected: texts.length,
  build_without_paths_us: timeUs(() => build(false)),
  build_with_paths_us: timeUs(() => build(true)),
  libddwaf_run_us: timeUs(() => engine.inspect(texts)),
  libddwaf_run_without_lanes_us: timeUs(() => withoutLanes.inspect(texts)),
  libddwaf_lanes_vs_without_interleaved: pairedRatio(
    () => withoutLanes.inspect(texts),
    () => engine.inspect(texts),
  ),
  // Lanes matter where there is much free text: every string is one shell_unescape would rewrite.
  libddwaf_lanes_vs_without_on_40_prose_strings: pairedRatio(
    () => withoutLanes.inspect(prose),
    () => engine.inspect(prose),
    21,
    Math.max(20, Math.round(RUNS / 100)),
  ),
};
for (const n of [4, 8]) {
  const batch = Array.from({ length: n }, () => texts).flat();
  result[`libddwaf_per_request_in_batches_of_${n}_us`] = Math.round((timeUs(() => engine.inspect(batch)) / n) * 10) / 10;
}
// Clean strings remembered (src/threats/waf-clean-strings.ts), through inspectSoon as the stage
// calls it, 4 requests a turn: the same body again (every string remembered), and a body whose
// customer and note are new on every request, with memory and without (what remembering costs
// when nothing repeats).
const forgetting = createWafEngine({ rules: wafRuleset(1, new Set()), budgetMicros: 1_000_000, cleanStrings: 0 });
let n = 0;
const fresh = () => {
  const t = createWafTexts(false);
  n++;
  addValue(t, '/body', { ...order, customer: `${order.customer} ${n}`, note: `${order.note} ${n}` }, limits);
  addValue(t, '/header/user-agent', 'wrk/4.2', limits);
  return t.texts;
};
const timeSoonUs = async (e, textsOf) => {
  const turns = Math.round(RUNS / 4);
  const turn = () => Promise.all([0, 1, 2, 3].map(() => e.inspectSoon(textsOf())));
  for (let i = 0; i < Math.min(turns, 500); i++) await turn();
  const started = performance.now();
  for (let i = 0; i < turns; i++) await turn();
  return Math.round(((performance.now() - started) * 1000 * 10) / (turns * 4)) / 10;
};
result.remembered_same_body_us = await timeSoonUs(engine, () => build(false).texts);
result.not_remembered_same_body_us = await timeSoonUs(forgetting, () => build(false).texts);
result.remembered_new_strings_us = await timeSoonUs(engine, fresh);
result.not_remembered_new_strings_us = await timeSoonUs(forgetting, fresh);
engine.dispose();
withoutLanes.dispose();
forgetting.dispose();
console.log(JSON.stringify(result));
