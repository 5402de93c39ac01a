import t from 'tap';
import { bodyFieldValues } from '../../../src/threats/body-field-values.js';

const FORM = 'application/x-www-form-urlencoded';
const read = (mime: string, body: string, limit = 100) => {
  const { values, excess } = bodyFieldValues(mime, Buffer.from(body, 'latin1'), {}, limit);
  return { values: values.map(([name, value]) => [name, value().toString('latin1')]), excess };
};

t.test('a form: each distinct non-empty value, decoded to bytes as a backend decodes it', async (t) => {
  t.same(read(FORM, 'a=%57ARDEN&b=x+y&c=&d&e=%FF&f=%57ARDEN&&g=plain'), {
    values: [
      ['a', 'WARDEN'],
      ['b', 'x y'],
      ['e', '\u00ff'],
      ['g', 'plain'],
    ],
    excess: false,
  });
  t.same(
    read(FORM, 'q=%u0057x').values,
    [
      ['q', '%u0057x'],
      ['q', 'Wx'],
    ],
    "System.Web's %u reading is a value of its own",
  );
  t.same(read('', 'a=1').values, [['a', '1']], 'an untyped body is a form too (Rack)');
});

t.test(
  'JSON: string values unescaped, named by the member holding them; every literal of a document that is not interoperable',
  async (t) => {
    t.same(read('application/json', '{"q":"\\u0057x","tags":["a","b","a"],"n":1,"o":{"deep":"d"}}').values, [
      ['q', 'Wx'],
      ['tags', 'a'],
      ['tags', 'b'],
      ['deep', 'd'],
    ]);
    t.same(
      read('application/json', '{"q":"a","q":"\\u0057"}').values,
      [
        ['a JSON string', 'q'],
        ['a JSON string', 'a'],
        ['a JSON string', 'W'],
      ],
      'a name twice: names and values alike',
    );
    t.same(read('text/plain', ' {"q":"x"}').values, [['q', 'x']], 'a text body that opens like JSON');
  },
);

t.test('bounded: distinct values, and values read, duplicates included', async (t) => {
  t.same(read(FORM, Array.from({ length: 11 }, (_, i) => `f=${i}`).join('&'), 10).excess, true, 'more distinct values than the limit');
  t.same(read(FORM, Array.from({ length: 10 }, (_, i) => `f=${i}`).join('&'), 10).excess, false, 'as many as the limit');
  t.same(read(FORM, 'a=1&'.repeat(641), 10).excess, true, 'one value read more than 64 times the limit');
  t.same(read(FORM, 'a=1&'.repeat(640), 10), { values: [['a', '1']], excess: false }, 'one value read 64 times the limit');
  t.same(read('application/json', JSON.stringify(Array(641).fill('a')), 10).excess, true, 'the same for JSON strings');
});

t.test('linear on hostile bodies: 4 MiB of "&", of one pair repeated, of JSON strings', async (t) => {
  // An indexOf("=") from each pair was quadratic on "&" × n, and a split kept millions of strings
  // (a 10 MiB body held the event loop 9 s); linear, each of these takes tens of milliseconds.
  for (const [label, mime, body] of [
    ['&', FORM, Buffer.alloc(4 * 1024 * 1024, '&')],
    ['a=1&', FORM, Buffer.from('a=1&'.repeat(1024 * 1024))],
    ['= without &', FORM, Buffer.alloc(4 * 1024 * 1024, '=')],
    ['JSON "a" × 1 M', 'application/json', Buffer.from(JSON.stringify(Array(1024 * 1024).fill('a')))],
  ] as const) {
    const started = performance.now();
    bodyFieldValues(mime, body, {}, 1000);
    const ms = performance.now() - started;
    t.ok(ms < 1500, `${label}: ${ms.toFixed(0)} ms`);
  }
});
