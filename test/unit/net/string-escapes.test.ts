/** Backslash escapes undone as the readers a backend hands a string to undo them (src/net/string-escapes.ts). */
import t from 'tap';
import { escapesUndone, yamlEscapesUndone } from '../../../src/net/string-escapes.js';

t.test('JSON, JSON5, JavaScript and GraphQL escapes', async (t) => {
  const cases: [string, string][] = [
    ['\\u003cscript\\u003e', '<script>'],
    ['\\x27 OR 1=1', "' OR 1=1"],
    ['\\u{3C}script\\u{3E}', '<script>'],
    ['\\u{00000027}', "'"],
    ['\\u{1F600}', '\u{1F600}'],
    ['\\u{110000}', '\\u{110000}'],
    ['\\u{3C', 'u{3C'],
    ["\\'", "'"],
    ['\\n\\t\\0', '\n\t\0'],
    ['<scr\\\nipt>', '<script>'],
    ['<scr\\\r\n  ipt>', '<scr  ipt>'],
    ['\\U0000003C', 'U0000003C'],
    ['\\N\\_', 'N_'],
    ['plain', 'plain'],
  ];
  for (const [text, undone] of cases) t.equal(escapesUndone(text), undone, JSON.stringify(text));
});

t.test("YAML's double-quoted escapes, read where they differ (PyYAML's reading)", async (t) => {
  const cases: [string, string][] = [
    ['\\U0000003Cscript\\U0000003E', '<script>'],
    ['<scr\\\n  ipt>', '<script>'],
    ['<scr\\\r\n\tipt>', '<script>'],
    ['1\\_OR\\_1=1', '1\u00a0OR\u00a01=1'],
    ['\\N\\L\\P\\e\\a', '\u0085\u2028\u2029\x1b\x07'],
    ['\\U00110000', '\\U00110000'],
  ];
  for (const [text, undone] of cases) t.equal(yamlEscapesUndone(text), undone, JSON.stringify(text));
  for (const text of ['\\u0027', '\\x27', 'plain', '<scr\\\nipt>'])
    t.equal(yamlEscapesUndone(text), undefined, `${JSON.stringify(text)}: read alike, not twice`);
});
