/**
 * body-as-form.ts against a plain replay of Bottle 0.12's reading (`_parse_qsl` on the body as
 * Latin-1): on generated bodies, formNameHolds finds a method-override name exactly when one of
 * the fields Bottle reads (with an `=`) has one; decodedFormFields gives every field decoding changes.
 */
import t from 'tap';
import { decodedFormFields, formNameHolds } from '../../../src/net/body-as-form.js';
import { isMethodOverrideName } from '../../../src/openapi/name-readings.js';

/** Bottle's names for the fields with an `=`: split at `&`, `+` a space, `%XX` one Latin-1 byte. */
function bottleNames(body: Buffer): string[] {
  const unquote = (s: string) =>
    s.replaceAll('+', ' ').replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return body
    .toString('latin1')
    .split('&')
    .filter((pair) => pair.includes('='))
    .map((pair) => unquote(pair.slice(0, pair.indexOf('='))));
}

const PIECES = [
  '_method',
  '_METHOD',
  '%5Fmethod',
  '%5fMeThOd',
  'method',
  '_methodx',
  'x-tunneled-method',
  'X-HTTP-Method-Override',
  '_method[]',
  ' _method',
  '+_method',
  '._method',
  '_method%00x',
  '%6Dethod',
  'm',
  '%',
  '%2',
  '%zz',
  '=',
  '&',
  '"',
  '{',
  '}',
  'é',
  '%C3%A9',
  'a',
  '[',
  '.',
  'DELETE',
  '+',
  '\u0000',
  '%u005fmethod',
];

t.test('formNameHolds reads names as Bottle does', async (t) => {
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  let mismatches = 0;
  let found = 0;
  for (let n = 0; n < 60000; n++) {
    const parts: string[] = [];
    const length = 1 + (next() % 8);
    for (let i = 0; i < length; i++) {
      parts.push(PIECES[next() % PIECES.length] as string);
      // Often a field's shape: `&` before a name, `=` after it.
      if (next() % 3 === 0) parts.push(next() % 2 === 0 ? '&' : '=');
    }
    const body = Buffer.from(parts.join(''), 'utf8');
    const expected = bottleNames(body).some(isMethodOverrideName);
    if (expected) found++;
    if (formNameHolds(body, isMethodOverrideName) !== expected) {
      if (mismatches++ < 5) t.fail(`${JSON.stringify(body.toString('latin1'))}: expected ${expected}`);
    }
  }
  t.equal(mismatches, 0, 'no body read otherwise');
  t.ok(found > 100, `override names were generated (${found})`);
  t.equal(formNameHolds(Buffer.from('{"note":"&_method=DELETE&"}'), isMethodOverrideName), true);
  t.equal(formNameHolds(Buffer.from('{"note":"https://a/?_method"}'), isMethodOverrideName), false, 'no `=`: no field value');
});

t.test('decodedFormFields: the fields decoding changes, decoded', async (t) => {
  t.same(decodedFormFields('{"x":"&q=1%27%20OR&b=2&c+d=e"}', 100), ['q', "1' OR", 'c d', 'e"}']);
  t.same(decodedFormFields('a=1&b=2', 100), [], 'nothing to decode');
  t.same(decodedFormFields('a%20b', 100), [], 'no `=`');
  t.same(decodedFormFields('x=%zz+&y', 100), ['x', '%zz '], 'a malformed escape kept');
  t.same(decodedFormFields('%41=1', 100), ['A', '1'], 'a name');
  t.equal(decodedFormFields('&a=%41'.repeat(11), 10), undefined, 'past maxFields');
  t.equal(decodedFormFields('&a=%41'.repeat(10), 10)?.length, 20);
});
