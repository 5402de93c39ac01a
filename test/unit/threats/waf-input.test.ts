/** What the flattener hands libddwaf besides the strings as sent (src/threats/waf-input.ts). */
import t from 'tap';
import { addText, addValue, createWafTexts, isInert } from '../../../src/threats/waf-input.js';
import { createWafEngine } from '../../../src/threats/waf.js';
import { wafRuleset } from '../../../src/stages/waf-rules/rules.js';

const limits = { maxEntries: 10, maxDepth: 8 };

t.test('non-ASCII strings also in their NFKC form, which counts towards max_entries', async (t) => {
  const texts = createWafTexts();
  addValue(texts, '/q', '1\uFF07 OR 1=1', limits);
  t.same(texts.texts, ["1' OR 1=1", '1\uFF07 OR 1=1'], 'the compatible form, then the string as sent');
  const plain = createWafTexts();
  addValue(plain, '/q', 'ご注文 O\u2019Brien', limits);
  t.same(plain.texts, ['ご注文 O\u2019Brien'], 'a string NFKC leaves as it is is not copied');
  // max_entries counts names and values; their readings may be up to 4 strings each on average.
  t.doesNotThrow(() => addValue(createWafTexts(), '/q', '\uFF21 \uFF22', { maxEntries: 1, maxDepth: 8 }), 'one entry, two texts');
  t.throws(
    () => addValue(createWafTexts(), '/q', ['\uFF21 \uFF22', 'b c'], { maxEntries: 1, maxDepth: 8 }),
    { message: 'request has too many entries to inspect' },
    'two entries where one is allowed: too many',
  );
  // The review's case: Windows paths have three readings each (as sent, JSON5-unescaped, YAML-unescaped).
  const paths = Array.from({ length: 3400 }, (_, i) => `C:\\Program Files\\Adobe\\app${i}.exe`);
  const wide = createWafTexts();
  t.doesNotThrow(() => addValue(wide, '/body', paths, { maxEntries: 10_000, maxDepth: 8 }), '3 400 Windows paths pass max_entries 10 000');
  t.ok(wide.texts.length >= 3 * 3400, `each read three ways (${wide.texts.length} texts)`);
});

t.test('names and values that point into a prototype are handed over', async (t) => {
  const texts = createWafTexts();
  addValue(texts, '/body', JSON.parse('{"__proto__": {"a": 1}, "constructor": {"prototype": {}}, "sku": "SKU-1"}'), limits);
  t.ok(texts.texts.includes('__proto__'), '__proto__ is not skipped as an inert identifier');
  t.ok(texts.texts.includes('constructor.prototype'), 'the constructor.prototype path is named');
  t.notOk(texts.texts.includes('SKU-1'), 'other identifiers still are');
});

t.test('what the inert shortcut skips, no rule flags (the real engine over its alphabet)', async (t) => {
  // Words the rules know (SQL, files, hosts) joined as an identifier can be: a few thousand strings
  // of the shortcut's alphabet, plus seeded random ones; any the shortcut skips must pass every rule.
  const words = ['1', '0', 'a', 'or', 'and', 'union', 'select', 'sleep', 'version', 'user', 'null', 'NULL', '-', '--', '.', '_', 'e1'];
  words.push('0x1', 'from', 'dual', 'admin', 'by', 'order', 'having', '1e1', 'win.ini', 'WIN.INI', 'boot.ini', 'system32', 'localhost');
  words.push('127.0.0.1', '169.254.169.254', '2130706433', '0x7f000001', 'id', 'whoami', 'not', 'like', 'true', 'char', 'ascii', 'ini');
  const tails = ['', '1', '-', '.', 'or', 'union', 'a', 'e1', '--'];
  const strings = new Set<string>();
  for (const a of words) for (const b of words) for (const c of tails) strings.add(a + b + c);
  const alphabet = 'abcdeilnorstuxABELNOU0123456789_.-';
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * alphabet.length;
  for (let i = 0; i < 5000; i++) {
    let s = '';
    for (let n = 1 + (i % 16); n > 0; n--) s += alphabet[Math.floor(random())];
    strings.add(s);
  }
  const skipped = [...strings].filter(isInert);
  t.ok(skipped.length > 10_000, `${skipped.length} of ${strings.size} strings skipped by the shortcut`);
  for (const paranoia of [1, 2, 3]) {
    const engine = createWafEngine({ rules: wafRuleset(paranoia, new Set()), budgetMicros: 100_000, cleanStrings: 0 });
    // A timeout says the process was not scheduled for 100 ms (a loaded host), not what the rules
    // think: asked again, up to three times.
    const inspect = (s: string) => {
      let found = engine.inspect([s]);
      for (let i = 0; i < 2 && found === 'timeout'; i++) found = engine.inspect([s]);
      return found;
    };
    const flagged = skipped.flatMap((s) => {
      const found = inspect(s);
      return found && found !== 'timeout' ? [`${s} (${found.rule})`] : found === 'timeout' ? [`${s} (timeout)`] : [];
    });
    engine.dispose();
    t.same(flagged.slice(0, 20), [], `paranoia ${paranoia}: no skipped string is flagged`);
  }
  for (const s of ['win.ini', 'boot.ini', 'WIN.INI', 'null--', '-null--']) t.notOk(isInert(s), `${s} is inspected`);
});

t.test('a string with backslash escapes is also read with them undone (a query language inside JSON)', async (t) => {
  const texts = createWafTexts();
  addValue(texts, '/body', { query: '{ s(q: "\\u{3C}b\\u{3E}") }', yaml: 'a\\U00000027b', plain: 'a b' }, limits);
  t.same(
    texts.texts,
    ['{ s(q: "\\u{3C}b\\u{3E}") }', '{ s(q: "<b>") }', 'a\\U00000027b', 'aU00000027b', "a'b", 'a b'],
    'as sent, escapes undone, and as YAML reads them where that differs',
  );
  const text = createWafTexts();
  addText(text, '/body', '{"q":"\\u0027"}', limits);
  t.same(text.texts, ['{"q":"\\u0027"}'], 'a body whose literals are read on their own: as sent only');
});

t.test('a name with "#", "/" or "~" is escaped in its path (~2, ~1, ~0): only the waf writes a #name suffix', async (t) => {
  const texts = createWafTexts(true);
  addValue(texts, '/body', { 'sql#x': { 'a b': '<p x>' }, 'a/b~c': '<i y>' }, limits);
  t.same(texts.paths, ['/body/sql~2x#name', '/body/sql~2x/a b#name', '/body/sql~2x/a b', '/body/a~1b~0c#name', '/body/a~1b~0c']);
  t.same(texts.texts, ['sql#x', 'a b', '<p x>', 'a/b~c', '<i y>'], 'the names themselves as sent');
});
