/**
 * Batched waf inspections (src/threats/waf-batch.ts): the requests of one event-loop turn share one
 * libddwaf call, and each still gets the verdict it gets alone.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createWafBatcher } from '../../../src/threats/waf-batch.js';
import { createWafEngine, type WafFound } from '../../../src/threats/waf.js';
import { wafRuleset } from '../../../src/stages/waf-rules/rules.js';
import { addValue, createWafTexts } from '../../../src/threats/waf-input.js';
import { repoRoot } from '../../support/sidecar.js';

const engine = createWafEngine({ rules: wafRuleset(1, new Set()), budgetMicros: 50_000 });
t.teardown(() => engine.dispose());

const textsOf = (value: unknown) => {
  const texts = createWafTexts();
  addValue(texts, '/body', value, { maxEntries: 10_000, maxDepth: 32 });
  return texts.texts;
};
const clean = (i: number) => textsOf({ customer: `O'Brien & Sons ${i}`, note: 'Leave it at the door; ring twice.' });
const attack = textsOf({ customer: "admin' OR '1'='1", note: 'fine' });

/** The real engine behind a batcher, with its calls counted. */
function countedBatcher(maxTexts = 256) {
  const calls = { allClean: 0, inspect: 0 };
  const batcher = createWafBatcher<Exclude<WafFound, undefined>>(
    {
      inspect(texts) {
        calls.inspect++;
        return engine.inspect(texts);
      },
      allClean(texts) {
        calls.allClean++;
        return engine.inspect(texts) === undefined;
      },
    },
    maxTexts,
  );
  return { batcher, calls };
}

t.test('clean requests of one turn: one call for all of them', async (t) => {
  const { batcher, calls } = countedBatcher();
  const found = await Promise.all(Array.from({ length: 20 }, (_, i) => batcher.inspect(clean(i))));
  t.same(found, Array(20).fill(undefined), 'all clean');
  t.same(calls, { allClean: 1, inspect: 0 });
});

t.test('an attack in the turn: every request is inspected alone, and named as it is alone', async (t) => {
  const { batcher, calls } = countedBatcher();
  const inputs = [clean(1), clean(2), attack, clean(3)];
  const found = await Promise.all(inputs.map((texts) => batcher.inspect(texts)));
  t.same(
    found,
    inputs.map((texts) => engine.inspect(texts)),
    'the verdicts of inspecting each alone',
  );
  t.match(found[2], { class: 'sqli' });
  t.same(calls, { allClean: 1, inspect: 4 });
});

t.test('a turn larger than one list is cut into batches; a lone request is inspected directly', async (t) => {
  const { batcher, calls } = countedBatcher(5);
  const inputs = Array.from({ length: 7 }, (_, i) => clean(i)); // 2 strings each: batches of 2, 2, 2, 1
  await Promise.all(inputs.map((texts) => batcher.inspect(texts)));
  t.same(calls, { allClean: 3, inspect: 1 });
});

t.test('requests of different turns are not held for each other', async (t) => {
  const { batcher, calls } = countedBatcher();
  t.equal(await batcher.inspect(clean(1)), undefined);
  t.equal(await batcher.inspect(clean(2)), undefined);
  t.same(calls, { allClean: 0, inspect: 2 }, 'one each, alone');
});

t.test('an inspection that throws fails its own request only', async (t) => {
  const batcher = createWafBatcher<string>(
    {
      inspect: (texts) => {
        if (texts.includes('boom')) throw new Error('boom');
        return texts.includes('bad') ? 'match' : undefined;
      },
      allClean: () => false,
    },
    256,
  );
  const results = await Promise.allSettled([batcher.inspect(['ok']), batcher.inspect(['boom']), batcher.inspect(['bad'])]);
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  t.same((results[2] as PromiseFulfilledResult<string>).value, 'match');
});

t.test('the engine batched: the whole corpus at once gets the verdicts it gets one by one', async (t) => {
  const lines = (file: string) =>
    readFileSync(join(repoRoot, 'test/fixtures/waf', file), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Record<string, string>);
  const values = [...lines('attacks.jsonl').map((a) => a.payload), ...lines('benign.jsonl').map((b) => b.value)];
  const inputs = values.map((v) => textsOf({ q: v }));
  const alone = inputs.map((texts) => engine.inspect(texts));
  const batched = await Promise.all(inputs.map((texts) => Promise.resolve(engine.inspectSoon(texts))));
  const differing = inputs.filter((_, i) => JSON.stringify(alone[i]) !== JSON.stringify(batched[i]));
  t.equal(differing.length, 0, `${inputs.length} requests, ${alone.filter(Boolean).length} of them attacks`);
  t.equal(engine.inspectSoon([]), undefined, 'nothing to inspect: answered at once');
});
