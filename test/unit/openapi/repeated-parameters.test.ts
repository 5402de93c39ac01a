/**
 * A parameter or object property given more than once where its schema holds one value: the
 * validator read one copy (deepObject and cookies the last, exploded properties the first) and the
 * backend got all of them, to read another. Refused as a repeated scalar query parameter is; copies
 * that are the items of an array are each checked.
 */
import t from 'tap';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import type { Operation, ParameterObject } from '../../../src/openapi/operations.js';
import { testOperation } from '../../support/operation.js';

const parameters: ParameterObject[] = [
  {
    name: 'filter',
    in: 'query',
    style: 'deepObject',
    explode: true,
    schema: {
      type: 'object',
      properties: { color: { type: 'string', enum: ['red', 'black'] }, tags: { type: 'array', items: { enum: ['a', 'b'] } } },
    },
  },
  {
    name: 'page',
    in: 'query',
    schema: {
      type: 'object',
      properties: { size: { type: 'integer', maximum: 50 }, sort: { type: 'array', items: { enum: ['name', 'age'] } } },
    },
  },
  { name: 'ids', in: 'query', explode: false, schema: { type: 'array', items: { type: 'integer', maximum: 10 } } },
  { name: 'tags', in: 'query', schema: { type: 'array', items: { type: 'string', maxLength: 3 } } },
  { name: 'session', in: 'cookie', schema: { type: 'string', pattern: '^[a-z0-9]+$' } },
];

const op: Operation = testOperation({
  id: 'list',
  method: 'GET',
  paths: ['/echo'],
  pointer: '#/paths/~1echo/get',
  parameters,
  dialect: '3.0',
});

const validator = compileRequestValidator(op, { unknownQuery: 'allow' });
const check = (search: string, cookie?: string) =>
  validator.params({ params: {}, search, headers: cookie === undefined ? {} : { cookie } });

t.test('a deepObject property, an exploded property or a cookie given twice is refused', async (t) => {
  const refused: [string, string | undefined, string][] = [
    ['?filter[color]=green&filter[color]=red', undefined, '/query/filter/color'],
    ['?filter[color]=red&filter[color]=green', undefined, '/query/filter/color'],
    ['?filter[color]=red&filter[color]=red', undefined, '/query/filter/color'],
    ['?filter[x]=1&filter[x]=2', undefined, '/query/filter/x'], // a property the schema does not declare
    ['?size=10&size=999', undefined, '/query/page/size'],
    ['?size=999&size=10', undefined, '/query/page/size'],
    ['?ids=1,2&ids=3', undefined, '/query/ids'], // explode: false: one copy holds the whole list
    ['', 'session=<x>; session=abc', '/cookie/session'],
    ['', 'session=abc; other=1; session=<x>', '/cookie/session'],
    ['', 'session=abc;session=abc', '/cookie/session'],
  ];
  for (const [search, cookie, pointer] of refused)
    t.same(check(search, cookie), { pointer, message: 'must be given once' }, `${search}${cookie ? ` Cookie: ${cookie}` : ''}`);
  // The one refusal of a repeated scalar query parameter, unchanged.
  t.same(check('?filter=1&filter=2'), { pointer: '/query/filter', message: 'must be given once' });
});

t.test('one copy each, and copies that are the items of an array, pass; every item is checked', async (t) => {
  for (const [search, cookie] of [
    ['?filter[color]=red&size=10&ids=1,2', 'session=abc; other=1; other=2'],
    ['?filter[tags]=a&filter[tags]=b', undefined], // an array property: each copy an item
    ['?sort=name&sort=age', undefined],
    ['?tags=a&tags=b', undefined],
  ] as const)
    t.equal(check(search, cookie), undefined, `${search}${cookie ? ` Cookie: ${cookie}` : ''}`);
  t.match(check('?filter[tags]=a&filter[tags]=z'), { pointer: '/query/filter/tags/1' });
  t.match(check('?sort=name&sort=x'), { pointer: '/query/page/sort/1' });
  t.match(check('?tags=a&tags=long'), { pointer: '/query/tags/1' });
  // One copy is still checked as before.
  t.match(check('?filter[color]=green'), { pointer: '/query/filter/color' });
  t.match(check('?size=999'), { pointer: '/query/page/size' });
  t.match(check('', 'session=<x>'), { pointer: '/cookie/session' });
});
