import { randomUUID } from 'node:crypto';
import t from 'tap';
import { parseJsonBody } from '../../../src/net/json-body.js';
import { bodyFieldValues } from '../../../src/threats/body-field-values.js';
import { EICAR, TEST_PATTERN } from '../../support/clamd.js';
import { base64Decoded, base64Start, byteArraysIn, isByteArray } from '../../../src/threats/json-binary.js';

const decoded = (s: string) => {
  const from = base64Start(s);
  return from === -1 ? undefined : base64Decoded(s, from).toString('latin1');
};

t.test('base64 as encoding/json, Jackson and the URL alphabet read it', async (t) => {
  const text = 'WARDEN-TEST-FILE';
  const b64 = Buffer.from(text).toString('base64');
  t.equal(b64, 'V0FSREVOLVRFU1QtRklMRQ==');
  t.equal(decoded(b64), text, 'padded');
  t.equal(decoded('V0FSREVOLVRFU1QtRklMRQ'), text, 'unpadded');
  t.equal(decoded('V0FSREVO\nLVRF\r\nU1QtRklMRQ==\n'), text, 'CR/LF anywhere, after the padding too');
  t.equal(decoded('-_-_-_-_-_-_-_-_'), '\xfb\xff\xbf'.repeat(4), 'the URL alphabet');
  t.equal(decoded('+/+/+/+/+/+/+/+/'), '\xfb\xff\xbf'.repeat(4), 'the standard alphabet');
  t.equal(decoded(`data:application/octet-stream;base64,${b64}`), text, 'a data: URL, from its comma');
  t.equal(decoded(`DATA:x;BASE64,${b64}`), undefined, 'data: is lower case (startsWith), the rest any case');
  t.equal(decoded(`data:x;BASE64,${b64}`), text);
  t.equal(decoded('abcdefghijklmnop')?.length, 12, 'a long word: junk, scanned all the same');
  t.equal(decoded('0123456789abcdeg')?.length, 12, 'one letter past f: not hex');
  for (const not of [
    'abcdefg', // 5 bytes: too short
    'abcdefghijklmno', // 15 characters: too short
    'username',
    'SKU_100123',
    'order_status_ok', // 15
    '2024-01-01',
    '550e8400-e29b-41d4-a716-446655440000', // a UUID: hex and -
    '550E8400-E29B-41D4-A716-446655440000',
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', // SHA-256 hex
    'D41D8CD98F00B204E9800998ECF8427E', // MD5 hex
    '0123456789abcdef', // hex
    '1234567890123456', // digits
    'V0FSREVO LVRFU1QtRklMRQ==', // a space: Go refuses it
    'V0FSREVO=LVRFU1QtRklMRQ=', // padding inside
    'V0FSREVOLVRFU1QtRklMRQ===', // padding past the quantum
    'V0FSREVOLVRFU1QtRklMRQ==x',
    'V0FSREVOLVRFU1QtRklMRQABC', // 25 characters: one left over
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
  const b64 = Buffer.from('WARDEN-TEST-FILE').toString('base64');
  t.same(read(JSON.stringify({ f: b64, g: [87, 65, 82, 68, 69, 78], h: b64, n: [1, 2], s: 'short' })).values, [
    ['f', b64],
    ['f', 'WARDEN-TEST-FILE'],
    ['g', 'WARDEN'],
    ['s', 'short'],
  ]);
  t.same(read(`{"f":"x","f":"${b64}","g":[87,65,82,68,69,78]}`).values, [
    ['a JSON string', 'f'],
    ['a JSON string', 'x'],
    ['a JSON string', b64],
    ['a JSON string', 'WARDEN-TEST-FILE'],
    ['a JSON string', 'g'],
    ['a JSON array', 'WARDEN'],
  ]);
  t.same(read(JSON.stringify(b64)).values, [
    ['/', b64],
    ['/', 'WARDEN-TEST-FILE'],
  ]);
  t.same(read(JSON.stringify([87, 65, 82, 68, 69, 78])).values, [['/', 'WARDEN']]);
  // Decoded values have an allowance of their own (review rt29/2 F2: they halved the plain one).
  const words = ['abcdefghijklmnop', 'bcdefghijklmnopq', 'cdefghijklmnopqr'];
  t.same(
    read(JSON.stringify(words), 3),
    {
      values: words.flatMap((w) => [
        ['/', w],
        ['/', decoded(w)],
      ]),
      excess: false,
    },
    'three words and their three base64 readings: within 3 and 3',
  );
  t.equal(read(JSON.stringify([...words, 'x']), 3).excess, true, 'a fourth plain value: past 3');
  const arrays = (n: number) => JSON.stringify(Array.from({ length: n }, (_, i) => [1, 2, 3, 4, 5, i]));
  t.equal(read(arrays(3), 3).excess, false, 'three byte arrays: within 3 decoded');
  t.equal(read(arrays(4), 3).excess, true, 'a fourth byte array: past the decoded allowance, refused (fails closed)');
  t.equal(read(arrays(4), 3).values.length, 3);
  t.equal(
    read(JSON.stringify({ id: [1, 2, 3, 4, 5, 6], a: 'x', b: 'y', c: 'z' }), 3).excess,
    false,
    'a byte array does not take a plain value its place',
  );
  t.equal(read(JSON.stringify(Array(150).fill('abcdefghijklmnop')), 3).excess, false, 'a repeated value: its base64 reading counts once');
  t.same(
    read(`{"a":1,"a":[1,2,3,4,5,6],"b":[1,2,3,4,5,6],"c":[1,2,3,4,5,7]}`).values.filter(([name]) => name === 'a JSON array'),
    [
      ['a JSON array', '\x01\x02\x03\x04\x05\x06'],
      ['a JSON array', '\x01\x02\x03\x04\x05\x07'],
    ],
    'not interoperable: the same array once',
  );
  const big = Array.from({ length: 100_000 }, (_, i) => i % 256);
  t.same(
    read(JSON.stringify({ a: big, b: big, c: [...big.slice(0, -1), 7] })).values.map(([name, v]) => [name, (v as string).length]),
    [
      ['a', 100_000],
      ['c', 100_000],
    ],
    'a large byte array keyed by its content: the same once, one number different twice',
  );
});

t.test('an ordinary batch of ids: none of them read as base64 (review rt29/2 F2)', async (t) => {
  const body = JSON.stringify({
    orders: Array.from({ length: 300 }, (_, i) => ({ id: randomUUID(), sku: `SKU_${100000 + i}`, status: 'CONFIRMED' })),
  });
  const { values, excess } = bodyFieldValues('application/json', Buffer.from(body), {}, 1000);
  t.equal(values.length, 601, '300 UUIDs, 300 SKUs, one status: no base64 readings');
  t.equal(excess, false, 'within the default 1 000');
});

t.test('EICAR and the test pattern qualify in every form the integration test sends', async (t) => {
  for (const file of [EICAR, Buffer.from(TEST_PATTERN), Buffer.concat([Buffer.from([0xfb, 0xff]), Buffer.from(TEST_PATTERN)])]) {
    const b64 = file.toString('base64');
    for (const form of [
      b64,
      b64.replace(/=+$/, ''),
      (b64.match(/.{1,20}/g) as string[]).join('\n'),
      (b64.match(/.{1,76}/g) as string[]).join('\r\n'),
      file.toString('base64url'),
      `data:application/x-msdownload;base64,${b64}`,
    ]) {
      t.equal(decoded(form), file.toString('latin1'), JSON.stringify(form.slice(0, 50)));
    }
  }
});

t.test('linear on hostile bodies: 16 KiB, 1 MiB, 4 MiB (10 MiB: bench, in the commit message)', async (t) => {
  const bodies: [string, (n: number) => Buffer][] = [
    [
      'many short base64 strings',
      (n) =>
        Buffer.from(
          JSON.stringify(Array.from({ length: Math.floor(n / 12) }, (_, i) => `ZZZZZZZZ${(i % 1e8).toString().padStart(8, '0')}`)),
        ),
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
