/**
 * Fuzz: duplicate member names in JSON bodies (src/net/json-body.ts). The check counts the member
 * names in the text against the members JSON.parse kept; it must agree with comparing the decoded
 * names object by object (the oracle below) on documents whose names repeat often, are spelled with
 * escapes, and whose string values hold quotes, backslashes and colons.
 */
import t from 'tap';
import fc from 'fast-check';
import { hasDuplicateMembers } from '../../src/net/json-body.js';
import { fuzz } from './fuzz-budget.js';

/** Name by name, per object, names decoded: slow and plain. */
function oracle(text: string): boolean {
  const stack: (Set<string> | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') stack.push(new Set());
    else if (c === '[') stack.push(null);
    else if (c === '}' || c === ']') stack.pop();
    else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const members = stack.at(-1);
      if (members && /^\s*:/.test(text.slice(j + 1))) {
        const name = JSON.parse(text.slice(i, j + 1)) as string;
        if (members.has(name)) return true;
        members.add(name);
      }
      i = j;
    }
  }
  return false;
}

const name = fc.constantFrom('"a"', '"b"', '"\\u0061"', '"a\\\\"', '"__proto__"', '" a"', '"\\""', '"a:"');
const space = fc.constantFrom('', ' ', '\n', '\t ');
const documents = fc.letrec((tie) => ({
  doc: fc.oneof({ depthSize: 'small' }, tie('leaf'), tie('array'), tie('object')),
  leaf: fc.constantFrom('1', '-2.5e3', 'null', 'true', '"x"', '"a\\":"', '"{\\"a\\":1}"', '"\\\\"', '":"'),
  array: fc.array(tie('doc'), { maxLength: 4 }).map((items) => `[${items.map(String).join(',')}]`),
  object: fc
    .array(fc.tuple(name, space, space, tie('doc')), { maxLength: 5 })
    .map((members) => `{${members.map(([n, before, after, v]) => `${n}${before}:${after}${String(v)}`).join(',')}}`),
}));
const doc = documents.doc as fc.Arbitrary<string>;

t.test('duplicate member names: the counting check agrees with comparing decoded names', async (t) => {
  fuzz(
    t,
    'json.duplicates',
    [doc],
    (text) => {
      const expected = oracle(text);
      if (hasDuplicateMembers(text, JSON.parse(text)) !== expected) {
        throw new Error(`${text}: expected ${expected ? 'a duplicate' : 'none'}`);
      }
    },
    { runs: 3000 },
  );
});
