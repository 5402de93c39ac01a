import t from 'tap';
import { parseJsonBody } from '../../../src/net/json-body.js';
import { bodyFieldValues } from '../../../src/threats/body-field-values.js';
import { base64Decoded, base64Start, byteArraysIn, isByteArray } from '../../../src/threats/json-binary.js';

const decoded = (s: string) => {
  const from = base64Start(s);
  return from === -1 ? undefined : base64Decoded(s, from).toString('latin1');
};

t.test('base64 as encoding/json, Jackson and the URL alphabet read it', async (t) => {
  const text = 'WARDEN-TEST';
  const b64 = Buffer.from(text).toString('base64');
  t.equal(b64, 'V0FSREVOLVRFU1Q=');
  t.equal(decoded(b64), text, 'padded');
  t.equal(decoded('V0FSREVOLVRFU1Q'), text, 'unpadded');
  t.equal(decoded('V0FSREVO\nLVRF\r\nU1Q=\n'), text, 'CR/LF anywhere, after the padding too');
  t.equal(decoded('-_-_-_-_'), '\xfb\xff\xbf\xfb\xff\xbf', 'the URL alphabet');
  t.equal(decoded('+/+/+/+/'), '\xfb\xff\xbf\xfb\xff\xbf', 'the standard alphabet');
  t.equal(decoded(`data:application/octet-stream;base64,${b64}`), text, 'a data: URL, from its comma');
  t.equal(decoded(`DATA:x;BASE64,${b64}`), undefined, 'data: is lower case (startsWith), the rest any case');
  t.equal(decoded(`data:x;BASE64,${b64}`), text);
  t.equal(decoded('abcdefgh'), 'i\xb7\x1dy\xf8!', 'a word: junk, scanned all the same');
  for (const not of [
    'abcdefg', // 5 bytes: too short
    'V0FSREVO LVRFU1Q=', // a space: Go refuses it
    'V0FSREVO=LVRFU1Q', // padding inside
    'V0FSREVOLVRFU1Q==', // padding past the quantum
    'V0FSREVOLVRFU1Q===',
    'V0FSREVOLVRFU1Q=x',
    'V0FSREVOLVRFU1QAB', // 17 characters: one left over
    'hello world!',
    `data:x,${b64}`, // not ;base64
    `data:${'x'.repeat(300)};base64,${b64}`, // the head too long
    '',
  ]) {
    t.equal(base64Start(not), -1, JSON.stringify(not.slice(0, 40)));
  }
});

t.test('byte arrays: parsed, and read lexically from a document that is not interoperable', async (t) => {
  t.ok(isByteArray([0, 1, 2, 255, -128, -1]));
  t.notOk(isByteArray([0, 1, 2, 3, 4]), 'fewer than six');
  t.notOk(isByteArray([0, 1, 2, 3, 4, 256]), 'past 255');
  t.notOk(isByteArray([0, 1, 2, 3, 4, -129]), 'below -128');
  t.notOk(isByteArray([0, 1, 2, 3, 4, 1.5]), 'not an integer');
  t.notOk(isByteArray([0, 1, 2, 3, 4, '5']), 'a string');
  const lex = (s: string) => byteArraysIn(s).map((b) => [...b]);
  t.same(lex('{"a":[1,2,3,4,5,6],"b":[ -1 , 255,0,\n7,8,9 ]}'), [
    [1, 2, 3, 4, 5, 6],
    [255, 255, 0, 7, 8, 9],
  ]);
  t.same(lex('[[1,2,3,4,5,6]]'), [[1, 2, 3, 4, 5, 6]], 'nested: the inner one');
  for (const not of [
    '[1,2,3,4,5]',
    '[1,2,3,4,5,256]',
    '[1,2,3,4,5,6,]',
    '[,1,2,3,4,5,6]',
    '[1 2,3,4,5,6,7]',
    '[1,2,3,4,5,1.5]',
    '[1,2,3,4,5,--1]',
    '[1,2,3,4,5,6',
  ]) {
    t.same(lex(not), [], not);
  }
});

t.test('body values: a base64 string and a byte array also as the bytes they spell, each once', async (t) => {
  const read = (body: string, limit = 100) => {
    const { values, excess } = bodyFieldValues('application/json', Buffer.from(body), {}, limit);
    return { values: values.map(([name, value]) => [name, value().toString('latin1')]), excess };
  };
  const b64 = Buffer.from('WARDEN-TEST').toString('base64');
  t.same(read(JSON.stringify({ f: b64, g: [87, 65, 82, 68, 69, 78], h: b64, n: [1, 2], s: 'short' })).values, [
    ['f', b64],
    ['f', 'WARDEN-TEST'],
    ['g', 'WARDEN'],
    ['s', 'short'],
  ]);
  t.same(read(`{"f":"x","f":"${b64}","g":[87,65,82,68,69,78]}`).values, [
    ['a JSON string', 'f'],
    ['a JSON string', 'x'],
    ['a JSON string', b64],
    ['a JSON string', 'WARDEN-TEST'],
    ['a JSON string', 'g'],
    ['a JSON array', 'WARDEN'],
  ]);
  t.same(read(JSON.stringify(b64)).values, [
    ['/', b64],
    ['/', 'WARDEN-TEST'],
  ]);
  t.same(read(JSON.stringify([87, 65, 82, 68, 69, 78])).values, [['/', 'WARDEN']]);
  // A decoded value counts against the limit like any other.
  t.equal(read(JSON.stringify(['abcdefgh', 'bcdefghi']), 3).excess, true, 'two words and their base64 readings: past 3');
  t.equal(read(JSON.stringify(Array(150).fill('abcdefgh')), 3).excess, false, 'a repeated value: its base64 reading counts once');
});

t.test('linear on hostile bodies: 16 KiB, 1 MiB, 4 MiB (10 MiB: bench, in the commit message)', async (t) => {
  const bodies: [string, (n: number) => Buffer][] = [
    [
      'many short base64 strings',
      (n) =>
        Buffer.from(JSON.stringify(Array.from({ length: Math.floor(n / 12) }, (_, i) => `AAAA${(i % 1e6).toString().padStart(6, '0')}`))),
    ],
    ['one huge base64 string', (n) => Buffer.from(JSON.stringify({ f: 'A'.repeat(n - 10) }))],
    ['one huge base64 string of line breaks', (n) => Buffer.from(JSON.stringify({ f: `AAAAAAAA${'\n'.repeat((n - 20) / 2)}!` }))],
    ['a huge byte array', (n) => Buffer.from(JSON.stringify(Array(Math.floor(n / 4)).fill(255)))],
    [
      'many small byte arrays',
      (n) => Buffer.from(JSON.stringify(Array.from({ length: Math.floor(n / 14) }, (_, i) => [1, 2, 3, 4, 5, i % 256]))),
    ],
    ['a huge byte array, the last item not a byte', (n) => Buffer.from(JSON.stringify([...Array(Math.floor(n / 4)).fill(255), 'x']))],
    [
      'a huge byte array, not interoperable',
      (n) =>
        Buffer.from(
          `{"a":1,"a":[${Array(Math.floor(n / 4))
            .fill(255)
            .join(',')}]}`,
        ),
    ],
    ['"[" × n, not interoperable', (n) => Buffer.from(`{"a":1,"a":"${'[1,'.repeat(n / 3)}"}`)],
  ];
  for (const [label, make] of bodies) {
    const times: string[] = [];
    let last = 0;
    for (const size of [16 * 1024, 1024 * 1024, 4 * 1024 * 1024]) {
      const body = make(size);
      // Parsed first: the parse is the waf's and validation's too, here before this change.
      const request = { bodyJson: parseJsonBody(body) ?? (false as const) };
      const started = performance.now();
      const { values } = bodyFieldValues('application/json', body, request, 1000);
      // Decoding each value is the scan's work, one at a time: timed too.
      for (const [, value] of values) value();
      last = performance.now() - started;
      times.push(`${(body.length / 1024).toFixed(0)} KiB ${last.toFixed(0)} ms`);
    }
    t.ok(last < 1500, `${label}: ${times.join(', ')}`);
  }
});
