/**
 * Detection and false-positive rates of the waf at paranoia 1, measured on the project's corpus
 * (test/fixtures/waf: attack payloads per class with their sources, and benign values an API
 * receives). Each value is inspected as a query parameter value, as the backend would decode it.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createWafEngine, type WafMatch } from '../../../src/threats/waf.js';
import { WAF_RULES, wafRuleset } from '../../../src/stages/waf-rules/rules.js';
import { addValue, createWafTexts } from '../../../src/threats/waf-input.js';
import { repoRoot } from '../../support/sidecar.js';

const lines = (file: string) =>
  readFileSync(join(repoRoot, 'test/fixtures/waf', file), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, string>);

const attacks = lines('attacks.jsonl');
const benign = lines('benign.jsonl');
const engine = createWafEngine({ rules: wafRuleset(1, new Set()), budgetMicros: 50_000 });
t.teardown(() => engine.dispose());
const detect = (value: string) => {
  const texts = createWafTexts();
  addValue(texts, '/query/q', value, { maxEntries: 10_000, maxDepth: 32 });
  return engine.inspect(texts.texts);
};

t.test('the corpus is big enough and every attack names its source', async (t) => {
  t.ok(attacks.length >= 300, `${attacks.length} attack payloads`);
  t.ok(benign.length >= 1000, `${benign.length} benign values`);
  t.ok(
    attacks.every((a) => a.source && a.class && a.payload),
    'class, payload and source on every attack',
  );
});

t.test('every detection names one of the ruleset’s rules, whose own pattern matches', async (t) => {
  const byId = new Map(WAF_RULES.map((r) => [r.id, r]));
  const named = new Map<string, number>();
  for (const a of attacks) {
    const found = detect(a.payload as string) as WafMatch | undefined;
    if (!found || typeof found !== 'object') continue;
    const rule = byId.get(found.rule);
    if (!rule) {
      t.fail(`unknown rule ${found.rule}`);
      continue;
    }
    named.set(found.rule, (named.get(found.rule) ?? 0) + 1);
    if ('regex' in rule.operator && !rule.transformers)
      t.match(a.payload, new RegExp(rule.operator.regex, 'i'), `${found.rule} matches what it caught`);
  }
  t.comment(`rules that fired: ${JSON.stringify(Object.fromEntries([...named].sort((x, y) => y[1] - x[1])))}`);
});

t.test('paranoia 1: detection ≥ 95 %, false positives ≤ 0.5 %', async (t) => {
  const missed = attacks.filter((a) => detect(a.payload as string) === undefined);
  const flagged = benign.filter((b) => detect(b.value as string) !== undefined);
  const detection = (attacks.length - missed.length) / attacks.length;
  const falsePositives = flagged.length / benign.length;
  const byClass: Record<string, string> = {};
  for (const cls of [...new Set(attacks.map((a) => a.class as string))]) {
    const all = attacks.filter((a) => a.class === cls);
    byClass[cls] = `${all.length - missed.filter((m) => m.class === cls).length}/${all.length}`;
  }
  t.comment(
    `detection ${(detection * 100).toFixed(1)} % (${attacks.length - missed.length}/${attacks.length}; ${JSON.stringify(byClass)})`,
  );
  t.comment(`false positives ${(falsePositives * 100).toFixed(2)} % (${flagged.length}/${benign.length})`);
  for (const m of missed.slice(0, 20)) t.comment(`missed ${m.class}: ${JSON.stringify(m.payload).slice(0, 100)}`);
  for (const f of flagged.slice(0, 20)) t.comment(`flagged ${f.kind}: ${JSON.stringify(f.value).slice(0, 100)}`);
  t.ok(detection >= 0.95, `detection ${(detection * 100).toFixed(1)} % ≥ 95 %`);
  t.ok(falsePositives <= 0.005, `false positives ${(falsePositives * 100).toFixed(2)} % ≤ 0.5 %`);
});
