/**
 * The shared form reader (form-pairs.ts) reads every form as `new URLSearchParams(text)` does, which
 * each stage used on its own before: the same fields, in the same order, Node's quirks included.
 */
import t from 'tap';
import { formPairs, formPairsOf } from '../../../src/net/form-pairs.js';
import { hostSlowdown } from '../../support/host-load.js';

const reference = (text: string) => [...new URLSearchParams(text)].flat();

/** A deterministic generator (xorshift32), so a failure names a reproducible input. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

t.test('the quirks, one by one', async (t) => {
  for (const text of [
    '',
    '?',
    '??a=1',
    '?a=1&b',
    '&&a&&=&=x&',
    'a=b=c',
    '+a+=+%2B+',
    'a%20b=%41%zz%4',
    '%+41=1', // "+" between "%" and its digits: Node still calls it an escape
    'é%+41=x', // …and decodes byte-wise when decodeURIComponent refuses: é is mojibake
    'a=é%FF',
    'a=%C3%A9&b=%E9',
    'a=%%41',
    'a=%4%41',
    'x=%u0027&y=%F0%9F%98%80',
    '😀=😀&a=%',
  ])
    t.same(formPairs(text), reference(text), JSON.stringify(text));
});

t.test('generated forms read as URLSearchParams reads them', async (t) => {
  const alphabet = [
    '&',
    '=',
    '+',
    '%',
    '2',
    'B',
    'b',
    'F',
    'f',
    'g',
    '0',
    '?',
    'a',
    'é',
    '\uFFFD',
    '😀',
    ' ',
    '%41',
    '%C3',
    '%A9',
    '%FF',
    '%2B',
    '%26',
  ];
  const next = random(0x5eed);
  let mismatches = 0;
  for (let n = 0; n < 20000; n++) {
    let text = '';
    const length = Math.floor(next() * 16);
    for (let i = 0; i < length; i++) text += alphabet[Math.floor(next() * alphabet.length)];
    if (JSON.stringify(formPairs(text)) !== JSON.stringify(reference(text)) && mismatches++ < 5)
      t.fail(`differs on ${JSON.stringify(text)}`);
  }
  t.equal(mismatches, 0, '20 000 generated forms, no difference');
});

t.test('a body that is not UTF-8 is read as its UTF-8 decoding, once per request', async (t) => {
  const body = Buffer.from([0x61, 0x3d, 0xc3, 0x25, 0x41, 0x39, 0x26, 0xff, 0x3d, 0x31]);
  const request: { body: Buffer; bodyForm?: readonly string[] } = { body };
  const first = formPairsOf(request);
  t.same(first, reference(body.toString('utf8')));
  t.equal(formPairsOf(request), first, 'the second stage gets the same reading');
  t.equal(formPairsOf({}), undefined, 'no body, no fields');
});

t.test('linear on hostile forms (10 MiB)', async (t) => {
  for (const unit of ['+', '&', 'a=&', '%20', '=&', 'a&', '%+4']) {
    const text = unit.repeat(Math.floor((10 << 20) / unit.length));
    const started = performance.now();
    formPairs(text);
    const ms = performance.now() - started;
    const bound = 1500 * hostSlowdown();
    t.ok(ms < bound, `${JSON.stringify(unit)}: ${ms.toFixed(0)} ms (< ${bound.toFixed(0)})`);
  }
});
