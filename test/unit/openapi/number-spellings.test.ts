/**
 * Numbers in parameters and form fields arrive as strings, which ajv's coercion read in
 * JavaScript's grammar: `1000000e-4` passed `maximum: 100` as 100 and `0b1` passed `minimum: 1`
 * as 1, while the backend's parseInt read 1 000 000 and 0 (docs/adversarial.md defect 89). Only
 * plain decimal spellings are read as numbers now (src/openapi/number-spellings.ts).
 */
import t from 'tap';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import type { Operation, ParameterObject } from '../../../src/openapi/operations.js';
import { testOperation } from '../../support/operation.js';

const parameters: ParameterObject[] = [
  { name: 'petId', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } },
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100 } },
  { name: 'n', in: 'query', schema: { type: 'number', maximum: 100 } },
  { name: 'id', in: 'query', schema: { type: 'integer', format: 'int64', minimum: 1 } },
  { name: 'big', in: 'query', schema: { type: 'integer', maximum: 9007199254740992 } },
  { name: 'ids', in: 'query', explode: false, schema: { type: 'array', items: { type: 'integer', maximum: 10 } } },
  {
    name: 'filter',
    in: 'query',
    style: 'deepObject',
    schema: {
      type: 'object',
      properties: { size: { type: 'integer', maximum: 50 }, name: { type: 'string' } },
      additionalProperties: { type: 'integer', maximum: 5 },
    },
  },
  {
    name: 'either',
    in: 'query',
    schema: {
      anyOf: [
        { type: 'integer', maximum: 100 },
        { type: 'string', maxLength: 3 },
      ],
    },
  },
  { name: 'loose', in: 'query', schema: { type: ['integer', 'string'] } },
  { name: 'maybe', in: 'query', schema: { type: ['integer', 'null'] } },
  { name: 'flag', in: 'query', schema: { type: 'boolean' } },
  { name: 'X-Count', in: 'header', schema: { type: 'integer', maximum: 10 } },
  { name: 'page', in: 'cookie', schema: { type: 'integer', maximum: 10 } },
];

const op: Operation = testOperation({
  id: 'getPet',
  paths: ['/v1/pets/:petId'],
  pointer: '#/paths/~1v1~1pets~1{petId}/post',
  parameters,
  requestBody: {
    content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', properties: { n: { type: 'integer', maximum: 100 } } } } },
  },
});

const validator = compileRequestValidator(op, { unknownQuery: 'allow' });
const query = (search: string, petId = '1') => validator.params({ params: { petId }, search, headers: {} });
const INTEGER = /^is not a plain decimal integer/;
const NUMBER = /^is not a plain decimal number/;

t.test("the red team's table: spellings Warden read as another number than parseInt are refused", async (t) => {
  t.match(query('?limit=1000'), { pointer: '/query/limit', message: 'must be <= 100' }, 'control');
  for (const limit of ['1000000e-4', '%201000e-1%20'])
    t.match(query(`?limit=${limit}`), { pointer: '/query/limit', message: INTEGER }, `?limit=${limit}`);
  for (const petId of ['0b1', '0.1e1', '1000e-3'])
    t.match(query('', petId), { pointer: '/path/petId', message: INTEGER }, `/v1/pets/${petId}`);
  t.match(query('', '0'), { pointer: '/path/petId', message: 'must be >= 1' }, 'control');
});

t.test('an integer is digits, with a "-" at most', async (t) => {
  for (const s of ['+1', '01', '%201', '1%20', '0x10', '1e2', '1.0', '0o7', 'Infinity', '%20', '%09', '1.', '.1e1'])
    t.match(query(`?limit=${s}`), { pointer: '/query/limit', message: INTEGER }, `?limit=${s}`);
  for (const s of ['1', '100', '50']) t.equal(query(`?limit=${s}`), undefined, `?limit=${s}`);
  for (const s of ['abc', '-0x1', '1_0', ''])
    t.match(query(`?limit=${s}`), { pointer: '/query/limit', message: 'must be integer' }, `?limit=${s}: no number to ajv either`);
  t.match(query('?limit=1.5'), { pointer: '/query/limit', message: INTEGER });
});

t.test('a number is an integer with an optional fraction: no exponent, no leading zeros or "."', async (t) => {
  for (const s of ['1e2', '1E2', '0.1e3', '01.5', '.5', '5.', '+5', '%205', '0x1', 'Infinity', '-Infinity', 'NaN%20'])
    t.match(
      query(`?n=${s}`),
      s === 'NaN%20' ? { pointer: '/query/n', message: 'must be number' } : { pointer: '/query/n', message: NUMBER },
      `?n=${s}`,
    );
  for (const s of ['0', '-0.5', '100', '100.0', '99.99', '0.000001']) t.equal(query(`?n=${s}`), undefined, `?n=${s}`);
});

t.test('digits beyond a double: refused where rounding changes the verdict, passed where it does not', async (t) => {
  // 2^53 + 1 reads as 2^53, which `maximum: 9007199254740992` lets through; a backend with int64 reads 2^53 + 1.
  t.match(query('?big=9007199254740993'), { pointer: '/query/big', message: /more digits than a double holds/ });
  t.equal(query('?big=9007199254740992'), undefined);
  t.equal(query('?big=9007199254740991'), undefined);
  t.match(query('?limit=100000000000000000000000001'), { pointer: '/query/limit', message: 'must be <= 100' });
  t.match(
    query('?n=100.0000000000000001'),
    { pointer: '/query/n', message: /more digits than a double holds/ },
    'rounds onto maximum: 100',
  );
  t.equal(query('?n=100.00000000000000000'), undefined, 'trailing zeros are the same number');
  // int64 ids with `minimum: 1`: rounding never crosses 1; the int64 range is checked on the digits.
  for (const id of ['1541815603606036481', '9223372036854775807']) t.equal(query(`?id=${id}`), undefined, id);
  for (const id of ['9223372036854775808', '99999999999999999999999'])
    t.match(query(`?id=${id}`), { pointer: '/query/id', message: 'must match format "int64"' }, id);
});

t.test('array items, object properties, headers, cookies and form fields are read the same way', async (t) => {
  t.match(query('?ids=1,1e1'), { pointer: '/query/ids/1', message: INTEGER });
  t.equal(query('?ids=1,10'), undefined);
  t.match(query('?filter[size]=500e-1'), { pointer: '/query/filter/size', message: INTEGER });
  t.match(query('?filter[other]=0x5'), { pointer: '/query/filter/other', message: INTEGER }, 'additionalProperties');
  t.equal(query('?filter[size]=50&filter[name]=1e5&filter[other]=5'), undefined, 'a string property takes any spelling');
  const headers = (h: Record<string, string>) => validator.params({ params: { petId: '1' }, search: '', headers: h });
  t.match(headers({ 'x-count': '1e1' }), { pointer: '/header/x-count', message: INTEGER });
  t.equal(headers({ 'x-count': '10' }), undefined);
  t.match(headers({ cookie: 'page=0x1' }), { pointer: '/cookie/page', message: INTEGER });
  t.equal(headers({ cookie: 'page=1' }), undefined);
  const form = (s: string) => validator.body('application/x-www-form-urlencoded', { body: Buffer.from(s) });
  t.match(form('n=1000e-1'), { pointer: '/body/n', message: INTEGER });
  t.match(form('n=0x5'), { pointer: '/body/n', message: INTEGER });
  t.equal(form('n=100'), undefined);
});

t.test('unions: a branch that reads a number takes only plain spellings; where the type allows a string, any', async (t) => {
  t.match(query('?either=1000e-1'), { pointer: '/query/either', message: INTEGER }, 'the integer branch read it as 100');
  t.equal(query('?either=50'), undefined);
  t.equal(query('?either=abc'), undefined);
  t.equal(query('?loose=0x10'), undefined, 'type [integer, string]: ajv leaves the string as it is');
  t.equal(query('?maybe='), undefined, 'type [integer, null]: "" is null');
  t.match(query('?maybe=%20'), { pointer: '/query/maybe', message: INTEGER }, 'a blank was 0');
});

t.test('booleans: only "true" and "false"', async (t) => {
  for (const s of ['true', 'false']) t.equal(query(`?flag=${s}`), undefined);
  for (const s of ['1', '0', 'TRUE', 'yes', ''])
    t.match(query(`?flag=${s}`), { pointer: '/query/flag', message: 'must be boolean' }, `?flag=${s}`);
});
