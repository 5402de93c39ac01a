/** What the flattener hands libddwaf besides the strings as sent (src/threats/waf-input.ts). */
import t from 'tap';
import { addValue, createWafTexts } from '../../../src/threats/waf-input.js';

const limits = { maxEntries: 10, maxDepth: 8 };

t.test('non-ASCII strings also in their NFKC form, which counts towards max_entries', async (t) => {
  const texts = createWafTexts();
  addValue(texts, '/q', '1\uFF07 OR 1=1', limits);
  t.same(texts.texts, ["1' OR 1=1", '1\uFF07 OR 1=1'], 'the compatible form, then the string as sent');
  const plain = createWafTexts();
  addValue(plain, '/q', 'ご注文 O\u2019Brien', limits);
  t.same(plain.texts, ['ご注文 O\u2019Brien'], 'a string NFKC leaves as it is is not copied');
  t.throws(
    () => addValue(createWafTexts(), '/q', '\uFF21 \uFF22', { maxEntries: 1, maxDepth: 8 }),
    { message: 'request has too many entries to inspect' },
    'one entry, two texts: too large',
  );
});

t.test('names and values that point into a prototype are handed over', async (t) => {
  const texts = createWafTexts();
  addValue(texts, '/body', JSON.parse('{"__proto__": {"a": 1}, "constructor": {"prototype": {}}, "sku": "SKU-1"}'), limits);
  t.ok(texts.texts.includes('__proto__'), '__proto__ is not skipped as an inert identifier');
  t.ok(texts.texts.includes('constructor.prototype'), 'the constructor.prototype path is named');
  t.notOk(texts.texts.includes('SKU-1'), 'other identifiers still are');
});
