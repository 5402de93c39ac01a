/**
 * body-as-form.ts against a plain replay of Bottle 0.12's reading (`_parse_qsl` on the body as
 * Latin-1), in both its versions: before 0.12.19 it split at `;` as well as `&` (the CVE-2020-28473
 * fix removed that). On generated bodies, formNameHolds finds a method-override name exactly when
 * one of the fields either version reads (with an `=`) has one; decodedFormFields gives every
 * field decoding changes. And a body of more method-like names than are tested is answered as
 * holding one (fail closed), at once.
 */
import t from 'tap';
import { decodedFormFields, formNameHolds, MAX_NAMES_TESTED } from '../../../src/net/body-as-form.js';
import { isMethodOverrideName } from '../../../src/openapi/name-readings.js';
import { hostSlowdown } from '../../support/host-load.js';

/**
 * Bottle's names for the fields with an `=`: split at `&` (0.12.19 on) or at `&` and `;` (before:
 * `qs.replace(';','&').split('&')`), `+` a space, `%XX` one Latin-1 byte.
 */
function bottleNames(body: Buffer, semicolon: boolean): string[] {
  const unquote = (s: string) =>
    s.replaceAll('+', ' ').replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  const latin1 = body.toString('latin1');
  return (semicolon ? latin1.replaceAll(';', '&') : latin1)
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
  ';',
  ';',
  '_method[;]',
  '%25u',
  '%6D%65%74%68%6F%64',
];

t.test('formNameHolds reads names as Bottle does', async (t) => {
  // xorshift32: the low bits of a power-of-two LCG repeat too soon (`;` never came before `_method`).
  let seed = 7;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  let mismatches = 0;
  let found = 0;
  let oneVersion = 0; // found by one Bottle and not the other
  for (let n = 0; n < 100_000; n++) {
    const parts: string[] = [];
    const length = 1 + (next() % 8);
    for (let i = 0; i < length; i++) {
      parts.push(PIECES[next() % PIECES.length] as string);
      // Often a field's shape: `&` before a name, `=` after it.
      if (next() % 3 === 0) parts.push((['&', '=', ';'] as const)[next() % 3] as string);
    }
    const body = Buffer.from(parts.join(''), 'utf8');
    const current = bottleNames(body, false).some(isMethodOverrideName);
    const old = bottleNames(body, true).some(isMethodOverrideName);
    const expected = current || old;
    if (expected) found++;
    if (current !== old) oneVersion++;
    if (formNameHolds(body, isMethodOverrideName) !== expected) {
      if (mismatches++ < 5) t.fail(`${JSON.stringify(body.toString('latin1'))}: expected ${expected}`);
    }
  }
  t.equal(mismatches, 0, 'no body read otherwise');
  t.ok(found > 100, `override names were generated (${found})`);
  t.ok(oneVersion > 20, `bodies that only one Bottle reads an override in (${oneVersion})`);
  t.equal(formNameHolds(Buffer.from('{"note":"&_method=DELETE&"}'), isMethodOverrideName), true);
  t.equal(formNameHolds(Buffer.from('{"note":"https://a/?_method"}'), isMethodOverrideName), false, 'no `=`: no field value');
  // Bottle before 0.12.19 (red team review rt27, F6).
  t.equal(formNameHolds(Buffer.from('{"name":"eve","note":";_method=DELETE;"}'), isMethodOverrideName), true, '`;` splits too');
  t.equal(formNameHolds(Buffer.from('x=1;_method=DELETE'), isMethodOverrideName), true, 'after a value, `;` starts a field');
});

t.test('formNameHolds: past MAX_NAMES_TESTED method-like names, answered as holding one, at once', async (t) => {
  const TEN_MiB = 10 << 20;
  for (const unit of ['method=&', 'METHOD=&', 'method%=&', '%6Dethod=&', ';method=', 'x=1;method=&', 'a%u0041=&']) {
    const body = Buffer.from(unit.repeat(Math.floor(TEN_MiB / unit.length)));
    const started = performance.now();
    const found = formNameHolds(body, isMethodOverrideName);
    const ms = performance.now() - started;
    t.equal(found, true, `${JSON.stringify(unit)} × 10 MiB: as if an override (fail closed)`);
    t.ok(ms < 400 * hostSlowdown(), `${JSON.stringify(unit)} × 10 MiB: ${ms.toFixed(1)} ms (< 400 × ${hostSlowdown().toFixed(2)})`);
  }
  const names = (n: number) => Buffer.from('&payment_method=card'.repeat(n));
  t.equal(formNameHolds(names(MAX_NAMES_TESTED), isMethodOverrideName), false, `${MAX_NAMES_TESTED} method-like names: read`);
  t.equal(formNameHolds(names(MAX_NAMES_TESTED + 1), isMethodOverrideName), true, 'one more: as if an override');
  const json = JSON.stringify({
    items: Array.from({ length: 20 }, (_, i) => ({ url: `https://shop.example/pay?order=${i}&payment_method=card&shipping_method=ups` })),
  });
  t.equal(formNameHolds(Buffer.from(json), isMethodOverrideName), false, 'JSON with a few &payment_method= URLs');
  // Ordinary bulk JSON past MAX_NAMES_TESTED pieces (second review rt27, F1): each record is longer than 64 bytes.
  const har = JSON.stringify(
    Array.from({ length: 12_000 }, (_, i) => ({
      method: 'GET',
      url: `https://api.example/items?id=${i}&sort=asc`,
      ua: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0',
    })),
  );
  t.equal(formNameHolds(Buffer.from(har), isMethodOverrideName), false, '12 000 access-log records: read, no override');
  const orders = JSON.stringify(
    Array.from({ length: 12_000 }, (_, i) => `https://shop.example/pay?order=${i}&payment_method=card&shipping_method=ups`),
  );
  t.equal(formNameHolds(Buffer.from(orders), isMethodOverrideName), false, '12 000 order URLs with &payment_method=: read');
});

t.test('decodedFormFields: the fields decoding changes, decoded', async (t) => {
  t.same(decodedFormFields('{"x":"&q=1%27%20OR&b=2&c+d=e"}', 100), ['q', "1' OR", 'c d', 'e"}']);
  t.same(decodedFormFields('a=1&b=2', 100), [], 'nothing to decode');
  t.same(
    decodedFormFields('{"x":";q=1%27%20OR;b=2"}', 100),
    ['{"x":";q', '1\' OR;b=2"}', 'q', "1' OR"],
    '`;` a separator too (Bottle before 0.12.19)',
  );
  t.same(
    decodedFormFields('a=%27;b&c=d;e=%41', 100),
    ['a', "';b", 'c', 'd;e=A', 'a', "'", 'e', 'A'],
    'each reading, the pieces a `;` bounds once',
  );
  t.same(decodedFormFields('a%20b', 100), [], 'no `=`');
  t.same(decodedFormFields('x=%zz+&y', 100), ['x', '%zz '], 'a malformed escape kept');
  t.same(decodedFormFields('%41=1', 100), ['A', '1'], 'a name');
  t.equal(decodedFormFields('&a=%41'.repeat(11), 10), undefined, 'past maxFields');
  t.equal(decodedFormFields('&a=%41'.repeat(10), 10)?.length, 20);
  // Code holds `x=y+1;` by the thousand (second review rt27, F2): the `;` reading is left out past
  // its budget, not refused; the `&` reading still counts.
  const script = Array.from({ length: 6_000 }, (_, i) => `var a${i}=b+c;x=y+1;`).join('\n');
  t.equal(decodedFormFields(script, 10_000)?.length, 2, 'a script of 12 000 `;` pieces: its one `&` piece, the `;` reading left out');
  t.equal(decodedFormFields('q=1%27;'.repeat(11), 10)?.length, 2, '`;` pieces past maxFields: left out');
  t.equal(decodedFormFields('q=1%27;'.repeat(3), 10)?.length, 8, '`;` pieces within maxFields: read');
});
