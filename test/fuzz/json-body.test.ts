/**
 * Fuzz: duplicate member names in JSON bodies (src/net/json-body.ts). The check counts the member
 * names in the text against the members JSON.parse kept; it must agree with comparing the decoded
 * names object by object (the oracle below) on documents whose names repeat often, are spelled with
 * escapes, and whose string values hold quotes, backslashes and colons.
 */
import t from 'tap';
import fc from 'fast-check';
import { hasDuplicateMembers, jsonStringLiterals } from '../../src/net/json-body.js';
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

/** Every key and string value of a parsed document, in document order. */
function stringsOf(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsOf(v, out);
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      stringsOf(v, out);
    }
  return out;
}

t.test('jsonStringLiterals: any text, quoted and escaped anyhow, read as the regex it replaced read it', async (t) => {
  // The pattern the one-pass reader replaced (docs/adversarial.md defect 97: quadratic on an
  // unterminated literal), kept here as the reference for which spans are literals.
  const REFERENCE = /"(?:[^"\\]|\\[^])*"|'(?:[^'\\]|\\[^])*'/g;
  fuzz(
    t,
    'json.string-literals-spans',
    [fc.array(fc.constantFrom('"', "'", '\\', 'a', 'u', '0', '\n', ':', '{'), { maxLength: 40 })],
    (parts) => {
      const text = parts.join('');
      // Each span's readings (two where YAML reads its escapes otherwise).
      const want = [...text.matchAll(REFERENCE)].flatMap(([m]) => jsonStringLiterals(m));
      const got = jsonStringLiterals(text);
      if (JSON.stringify(got) !== JSON.stringify(want))
        throw new Error(`${JSON.stringify(text)}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    },
    { runs: 5000 },
  );
});

t.test('jsonStringLiterals: every string of a document, unescaped, whatever its spelling', async (t) => {
  // Any JSON value, serialised with and without escapes for every character: the literals are its
  // keys and string values in order (what the waf inspects of a document its strict parse refuses).
  const escapeAll = (text: string) =>
    text.replace(/"((?:[^"\\]|\\.)*)"/g, (_m, inner: string) => {
      const s = JSON.parse(`"${inner}"`) as string;
      return `"${[...s].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`;
    });
  fuzz(
    t,
    'json.string-literals',
    [fc.jsonValue({ maxDepth: 4 }), fc.boolean(), fc.boolean()],
    (value, escaped, bom) => {
      const plain = JSON.stringify(value);
      const text = `${bom ? '\ufeff' : ''}${escaped ? escapeAll(plain) : plain}`;
      const got = jsonStringLiterals(text);
      const want = stringsOf(JSON.parse(plain));
      if (JSON.stringify(got) !== JSON.stringify(want))
        throw new Error(`${text}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    },
    { runs: 2000 },
  );
});
