/**
 * numericReferencesDecoded reads a form value as qs 6 does with interpretNumericEntities in
 * ISO-8859-1 mode (Express 5's body-parser 2): the expected values were read from qs 6.17.1's
 * `parse('v=' + encodeURIComponent(value), { charset: 'iso-8859-1', interpretNumericEntities: true })`.
 */
import t from 'tap';
import fc from 'fast-check';
import { mayHoldNumericReference, numericReferencesDecoded } from '../../../src/net/numeric-references.js';

t.test('decoded as qs decodes them', async (t) => {
  for (const [value, qs] of [
    ['&#60;b&#62;', '<b>'],
    ['&#0060;', '<'],
    ['a&#60;&#60;b', 'a<<b'],
    ['&&#60;;', '&<;'],
    ['&#&#39;;', "&#';"],
    ['&#65535;', '\uffff'],
    ['&#65536;', '\u{10000}'],
    ['&#128512;', '\u{1f600}'],
    ['&#1114111;', '\u{10ffff}'],
    ['&#1114112;', '\u0000'], // past U+10FFFF: fromCharCode's low 16 bits
    ['&#1114172;', '<'],
    ['&#99999999999999999999999999;', '\u0000'],
    ['&#0;', '\u0000'],
  ] as const) {
    t.equal(numericReferencesDecoded(value), qs, `${value} is ${JSON.stringify(qs)}`);
  }
});

t.test('what qs leaves as it is gives undefined', async (t) => {
  for (const value of ['', 'plain', '&#x3c;', '&#X3C;', '&#60', '&#;', '&# 60;', '&60;', '#60;', '&lt;', '&#-60;']) {
    t.equal(numericReferencesDecoded(value), undefined, JSON.stringify(value));
  }
});

t.test('a form body may hold one only with a %26', async (t) => {
  t.equal(mayHoldNumericReference(Buffer.from('a=%26%2360%3B')), true);
  t.equal(mayHoldNumericReference('a=%26#60%3B'), true);
  t.equal(mayHoldNumericReference(Buffer.from('a=%2660%3B&b=#60')), true);
  t.equal(mayHoldNumericReference(Buffer.from('a=b&c=%2E&d=&#60%3B')), false);
});

t.test('any string: as qs 6.17 replaces them', async () => {
  // qs's own code (lib/parse.js interpretNumericEntities), as the oracle.
  const qs = (s: string) =>
    s.replace(/&#(\d+);/g, (_, digits: string) => {
      let c = parseInt(digits, 10);
      if (c > 0xffff && c <= 0x10ffff) {
        c -= 0x10000;
        return String.fromCharCode(0xd800 | (c >> 10), 0xdc00 | (c & 0x3ff));
      }
      return String.fromCharCode(c);
    });
  const pieces = fc.constantFrom('&', '#', ';', '0', '6', '9', '1114172', '65536', 'x', 'é', '&#', '&#60;');
  fc.assert(
    fc.property(
      fc.array(pieces, { maxLength: 30 }).map((a) => a.join('')),
      (s) => (numericReferencesDecoded(s) ?? s) === qs(s),
    ),
    { numRuns: 5000 },
  );
});
