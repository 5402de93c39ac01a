/**
 * Clean strings remembered by the waf engine (src/threats/waf-clean-strings.ts): a request whose
 * strings were all found clean before skips libddwaf, and every verdict is still the one an engine
 * without memory gives — attacks among remembered strings are found and named by the same path.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { createCleanStrings, verdictIsPerString } from '../../../src/threats/waf-clean-strings.js';
import { createWafEngine, type WafFound } from '../../../src/threats/waf.js';
import { wafRuleset } from '../../../src/stages/waf-rules/rules.js';
import { addValue, createWafTexts } from '../../../src/threats/waf-input.js';
import { repoRoot } from '../../support/sidecar.js';

const LIMITS = { maxEntries: 10_000, maxDepth: 32 };
const textsOf = (value: unknown) => {
  const texts = createWafTexts();
  addValue(texts, '/body', value, LIMITS);
  return texts.texts;
};

t.test('unknownOf: the strings not remembered, and where each sits', async (t) => {
  const clean = createCleanStrings({ maxEntries: 100, maxLength: 10 });
  t.same(clean.unknownOf(['a', 'b']), { texts: ['a', 'b'], at: undefined }, 'nothing known: the texts themselves');
  clean.remember(['b', 'd', 'x'.repeat(11)]);
  t.same(clean.unknownOf(['a', 'b', 'c', 'd', 'e']), { texts: ['a', 'c', 'e'], at: [0, 2, 4] });
  t.same(clean.unknownOf(['d', 'b']).texts, [], 'all known');
  t.same(clean.unknownOf(['x'.repeat(11)]).texts, ['x'.repeat(11)], 'longer than maxLength: never remembered');
});

t.test('bounded: at most maxEntries, the strings still in use kept', async (t) => {
  const clean = createCleanStrings({ maxEntries: 100, maxLength: 64 });
  clean.remember(['kept']);
  for (let i = 0; i < 1000; i++) {
    clean.remember([`s${i}`]);
    if (i % 10 === 0) t.equal(clean.unknownOf(['kept']).texts.length, 0);
    if (clean.size > 100) t.fail(`size ${clean.size}`);
  }
  t.ok(clean.size <= 100, `size ${clean.size}`);
  t.same(clean.unknownOf(['s0']).texts, ['s0'], 'an old string not used since is forgotten');
  t.same(clean.unknownOf(['kept']).texts, [], 'a string in use survives');
  const none = createCleanStrings({ maxEntries: 0, maxLength: 64 });
  none.remember(['a']);
  t.equal(none.size, 0, 'maxEntries 0: nothing remembered');
});

t.test('what it keeps is its own: values cut from large headers do not keep the headers alive', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const clean = createCleanStrings({ maxEntries: 4096, maxLength: 256 });
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; clean.size < 4096; i++) {
    // A 16 KiB Cookie header as the parser hands it over, and the value the waf reads out of it.
    const header = JSON.parse(JSON.stringify(`id=1; pref=${i}${'x'.repeat(40)}; pad=${'p'.repeat(16_000)}`)) as string;
    clean.remember([(header.split(';')[1] as string).trim()]);
  }
  gc();
  const grown = (process.memoryUsage().heapUsed - before) / 2 ** 20;
  // Holding the headers was 63 MiB; 4 096 strings of ~50 characters are well under 2.
  t.ok(grown < 8, `4 096 remembered values hold ${grown.toFixed(1)} MiB`);
  t.equal(clean.unknownOf(['pref=0' + 'x'.repeat(40)]).texts.length, 0, 'and are still found');
});

t.test("Warden's rulesets are per string (one condition on one input per rule)", async (t) => {
  for (const paranoia of [1, 2, 3]) t.ok(verdictIsPerString(wafRuleset(paranoia, new Set()).ruleset), `paranoia ${paranoia}`);
  t.ok(verdictIsPerString(wafRuleset(1, new Set(), { lanes: false }).ruleset), 'without lanes');
  const twoConditions = {
    rules: [{ conditions: [{ parameters: { inputs: [{ address: 'a' }] } }, { parameters: { inputs: [{ address: 'b' }] } }] }],
  };
  t.notOk(verdictIsPerString(twoConditions), 'two conditions: not per string');
  const twoInputs = { rules: [{ conditions: [{ parameters: { inputs: [{ address: 'a' }, { address: 'b' }] } }] }] };
  t.notOk(verdictIsPerString(twoInputs), 'two inputs: not per string');
});

t.test('the engine: same verdicts as without memory, on clean and hostile requests mixed', async (t) => {
  const remembering = createWafEngine({ rules: wafRuleset(1, new Set()), budgetMicros: 50_000 });
  const forgetting = createWafEngine({ rules: wafRuleset(1, new Set()), budgetMicros: 50_000, cleanStrings: 0 });
  t.teardown(() => {
    remembering.dispose();
    forgetting.dispose();
  });
  const lines = (file: string) =>
    readFileSync(join(repoRoot, 'test/fixtures/waf', file), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Record<string, string>);
  const attacks = lines('attacks.jsonl').map((a) => a.payload as string);
  const benign = lines('benign.jsonl').map((b) => b.value as string);
  // Each request: benign strings that earlier requests taught, and now and then an attack among them.
  const requests = Array.from({ length: 600 }, (_, i) => {
    const body: Record<string, string> = { a: benign[i % 50] as string, b: benign[(i * 7) % 50] as string, c: 'ACME' };
    // 40 attacks, each coming back five times: an attack is never remembered as clean.
    if (i % 3 === 0) body[`k${i % 5}`] = attacks[(i / 3) % 40] as string;
    return textsOf(body);
  });
  const plain = (found: WafFound) => (typeof found === 'object' ? { rule: found.rule, class: found.class, index: found.index } : found);
  let differing = 0;
  let skipped = 0;
  let found = 0;
  for (const texts of requests) {
    const soon = remembering.inspectSoon(texts);
    if (!(soon instanceof Promise)) skipped++;
    const verdict = plain(await soon);
    const reference = plain(await forgetting.inspectSoon(texts));
    if (verdict !== undefined) found++;
    if (JSON.stringify(verdict) !== JSON.stringify(reference)) {
      differing++;
      t.same(verdict, reference, `verdict on ${JSON.stringify(texts).slice(0, 120)}`);
    }
  }
  t.equal(differing, 0, 'every verdict as without memory');
  t.ok(skipped > 100, `${skipped} of 600 requests decided without libddwaf (all their strings known clean)`);
  t.ok(found >= 190, `${found} requests refused, of the 200 that carry an attack`);
});

t.test('a match or a timeout is never remembered as clean', async (t) => {
  const engine = createWafEngine({ rules: wafRuleset(1, new Set()), budgetMicros: 50_000 });
  t.teardown(() => engine.dispose());
  const attack = textsOf({ q: "admin' OR '1'='1" });
  for (let i = 0; i < 3; i++) t.match(await engine.inspectSoon(attack), { class: 'sqli' }, `attempt ${i + 1}`);
  // A budget too small to finish: the verdict is a timeout, again and again.
  const slow = createWafEngine({ rules: wafRuleset(1, new Set()), budgetMicros: 0 });
  t.teardown(() => slow.dispose());
  const texts = textsOf({ note: 'a plain note' });
  t.equal(await slow.inspectSoon(texts), 'timeout');
  t.equal(await slow.inspectSoon(texts), 'timeout', 'still a timeout: not remembered as clean');
});
