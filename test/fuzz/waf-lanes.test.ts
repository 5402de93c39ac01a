/**
 * Fuzz: the waf's lanes (src/stages/waf-rules/rules.ts, Transformed). A transformed rule reads
 * only the strings its `admits` lets into its lane, so `admits` must hold for every string the
 * rule matches once transformed — or an attack would pass uninspected. Checked against libddwaf
 * itself: each transformed rule alone, with its transformers applied to every string (the
 * reference) and through its lane, on strings that mutate known matches with what the
 * transformers delete, fold, decode or normalise. The lane may flag more (its pattern also runs
 * untransformed on every string), never less.
 */
import t from 'tap';
import fc from 'fast-check';
import { WAF_RULES, wafRuleset } from '../../src/stages/waf-rules/rules.js';
import { createWafEngine } from '../../src/threats/waf.js';
import { fuzz } from './fuzz-budget.js';

/** Strings each transformed rule matches, to mutate around the edge of what it matches. */
const SEEDS = [
  'cat /etc/passwd',
  'tail /etc/shadow',
  'x;more /etc/passwd',
  'javascript:alert(1)',
  'vbscript:msgbox(1)',
  'data:text/html,<b>',
  '//localhost/',
  'http://127.0.0.1/',
  'http://metadata/',
  '//10.0.0.1:80/',
  'http://0x7f000001/',
];
/** What the transformers delete, fold or decode, and look-alikes they normalise. */
const NOISE = [
  '\\',
  '"',
  "'",
  '^',
  ' ',
  '\t',
  '\n',
  ',',
  ';',
  '/',
  '(',
  '&',
  '#',
  '&#x09;',
  '&Tab;',
  '&colon;',
  '&#58;',
  '\\t',
  '\\u0061',
  '\\x3a',
  'é',
  '①',
  '．',
  '：',
  '／',
  'ｌ',
  '０',
  '',
];
const mutated = fc
  .record({
    seed: fc.constantFrom(...SEEDS),
    inserts: fc.array(fc.tuple(fc.nat({ max: 40 }), fc.constantFrom(...NOISE)), { maxLength: 6 }),
    upper: fc.array(fc.nat({ max: 40 }), { maxLength: 6 }),
    fullWidth: fc.array(fc.nat({ max: 40 }), { maxLength: 4 }),
    drop: fc.option(fc.nat({ max: 40 })),
  })
  .map(({ seed, inserts, upper, fullWidth, drop }) => {
    const chars = [...seed];
    for (const i of upper) if (i < chars.length) chars[i] = (chars[i] as string).toUpperCase();
    for (const i of fullWidth) {
      const c = (chars[i] ?? '').charCodeAt(0);
      if (c > 0x20 && c < 0x7f) chars[i] = String.fromCharCode(c + 0xfee0);
    }
    if (drop !== null && drop < chars.length) chars.splice(drop, 1);
    for (const [i, piece] of inserts) chars.splice(Math.min(i, chars.length), 0, piece);
    return chars.join('');
  });
const soup = fc
  .array(fc.constantFrom(...SEEDS, ...NOISE, 'etc', 'passwd', 'java', 'script', 'localhost'), { maxLength: 8 })
  .map((p) => p.join(''));
const text = fc.oneof({ weight: 4, arbitrary: mutated }, { weight: 1, arbitrary: soup });

const transformed = WAF_RULES.filter((r) => r.transformers);

t.test('every transformed rule has a lane, and reads nothing else with its transformers', async (t) => {
  t.ok(transformed.length >= 3, `${transformed.length} transformed rules: ${transformed.map((r) => r.id).join(', ')}`);
  const { ruleset, lanes } = wafRuleset(3, new Set());
  t.same(lanes.map((l) => l.address).sort(), transformed.map((r) => `warden.lane.${r.id}`).sort(), 'one lane per transformed rule');
  const rules = (ruleset as { rules: { transformers?: string[]; conditions: { parameters: { inputs: { address: string }[] } }[] }[] })
    .rules;
  for (const r of rules.filter((x) => x.transformers)) {
    t.match(
      r.conditions[0]?.parameters.inputs.map((i) => i.address),
      [/^warden\.lane\./],
      `${String(r.transformers)} runs on a lane only`,
    );
  }
});

for (const rule of transformed) {
  t.test(`${rule.id}: its lane admits every string it matches`, async (t) => {
    const others = new Set(WAF_RULES.filter((r) => r.id !== rule.id).map((r) => r.id));
    const reference = createWafEngine({ rules: wafRuleset(3, others, { lanes: false }), budgetMicros: 1_000_000 });
    const laned = createWafEngine({ rules: wafRuleset(3, others), budgetMicros: 1_000_000 });
    t.teardown(() => {
      reference.dispose();
      laned.dispose();
    });
    const raw = 'regex' in rule.operator ? new RegExp(rule.operator.regex, 'i') : undefined;
    let matched = 0;
    let rawOnly = 0;
    fuzz(
      t,
      `waf.lane.${rule.id}`,
      [text],
      (s) => {
        const expected = reference.inspect([s]) !== undefined;
        const got = laned.inspect([s]) !== undefined;
        if (expected) matched++;
        if (expected && !got) throw new Error(`${JSON.stringify(s)} matches ${rule.id} transformed but passes its lane`);
        // The other way round is the pattern matching the untransformed string too (see Transformed).
        if (got && !expected) {
          if (!raw?.test(s)) throw new Error(`${JSON.stringify(s)} is flagged through the lane but matches neither form`);
          rawOnly++;
        }
      },
      { runs: 3000 },
    );
    t.comment(`${rule.id}: ${matched} matched transformed, ${rawOnly} more only untransformed`);
    // A property over strings the rule never matches would prove nothing.
    t.ok(matched > 0, `${matched} of the generated strings matched ${rule.id}`);
  });
}
