/**
 * Object and array parameters whose schema says so only through allOf, oneOf or anyOf (3.0's
 * `allOf: [$ref]` to give a `$ref` a description), and free-form exploded objects (maps): before,
 * only `type` at the top of the schema was read, so `?filter[status]=deleted`, `?size=999` and a
 * map's `?x=1000` were never decoded nor validated (schema-types.ts, request-validator.ts).
 */
import t from 'tap';
import { OpenApiError } from '../../../src/openapi/document.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import type { ParameterObject } from '../../../src/openapi/operations.js';
import { shapeOf } from '../../../src/openapi/schema-types.js';
import { testOperation } from '../../support/operation.js';

const Filter = { type: 'object', additionalProperties: false, properties: { status: { type: 'string', enum: ['available', 'sold'] } } };
const Page = { type: 'object', additionalProperties: false, properties: { size: { type: 'integer', maximum: 50 } } };

const validatorFor = (parameters: ParameterObject[], unknownQuery: 'allow' | 'refuse' = 'allow') =>
  compileRequestValidator(
    testOperation({ id: 'op', method: 'GET', paths: ['/x'], pointer: '#/paths/~1x/get', parameters, dialect: '3.0' }),
    { unknownQuery },
  );
const check = (v: ReturnType<typeof validatorFor>, search: string) => v.params({ params: {}, search, headers: {} })?.pointer;

t.test('shapes through allOf, and oneOf/anyOf when every branch agrees', async (t) => {
  t.equal(shapeOf({ allOf: [Filter] }), 'object');
  t.equal(shapeOf({ description: 'd', allOf: [{ allOf: [{ type: 'array' }] }] }), 'array');
  t.equal(shapeOf({ oneOf: [Filter, Page] }), 'object');
  t.equal(shapeOf({ anyOf: [Filter, { type: 'string' }] }), undefined, 'branches that disagree say nothing');
  t.equal(shapeOf({ allOf: [{ type: 'object' }, { type: 'array' }] }), undefined, 'nor members that do');
  t.equal(shapeOf({ type: 'integer' }), 'value');
  t.equal(shapeOf({}), undefined);
  const recursive: Record<string, unknown> = { allOf: [] };
  (recursive.allOf as unknown[]).push(recursive, Filter);
  t.equal(shapeOf(recursive), 'object', 'a recursive schema ends');
});

t.test('deepObject and exploded objects wrapped in allOf are validated', async (t) => {
  const v = validatorFor([
    { name: 'filter', in: 'query', style: 'deepObject', explode: true, schema: { allOf: [Filter] } },
    { name: 'page', in: 'query', schema: { description: 'paging', allOf: [Page] } },
    { name: 'ids', in: 'query', explode: false, schema: { allOf: [{ type: 'array', items: { type: 'integer', maximum: 10 } }] } },
  ]);
  t.equal(check(v, '?filter[status]=deleted'), '/query/filter/status');
  t.equal(check(v, '?filter[isAdmin]=true'), '/query/filter');
  t.equal(check(v, '?size=999'), '/query/page/size');
  t.equal(check(v, '?size=10&size=999'), '/query/page/size', 'given twice');
  t.equal(check(v, '?size=1e1'), '/query/page/size', 'a number spelled otherwise');
  t.equal(check(v, '?ids=1,99'), '/query/ids/1', 'an array through allOf is split');
  t.equal(check(v, '?size[]=999'), '/query/size[]', 'a name a backend reads as the property');
  t.equal(check(v, '?filter[status]=sold&size=10&ids=1,2'), undefined);
});

t.test('a branch that admits only null does not hide an object or an array (review of rows 243 + 247)', async (t) => {
  // 3.0 `{$ref: Filter, nullable: true}` as schema-rewrites.ts leaves it, dereferenced.
  const nullable30 = { allOf: [{ anyOf: [Filter, { enum: [null] }] }] };
  t.equal(shapeOf(nullable30), 'object', '3.0 nullable beside a $ref (before: undefined)');
  t.equal(shapeOf({ anyOf: [Filter, { type: 'null' }] }), 'object', "3.1 anyOf with {type: 'null'}");
  t.equal(shapeOf({ oneOf: [{ const: null }, Page] }), 'object', 'const: null, first');
  t.equal(shapeOf({ anyOf: [{ type: ['null'] }, { type: 'array' }] }), 'array');
  t.equal(shapeOf({ type: ['object', 'null'] }), 'object', "a type list of 'null' and object");
  t.equal(shapeOf({ type: ['null', 'array'] }), 'array');
  t.equal(shapeOf({ anyOf: [{ type: 'null' }] }), 'value', 'null alone is still a single value');
  t.equal(shapeOf({ anyOf: [Filter, { enum: [null, 'x'] }] }), undefined, 'a branch admitting more than null still counts');

  for (const [what, schema, dialect] of [
    ['3.0 nullable $ref', nullable30, '3.0'],
    ["3.1 anyOf [$ref, {type: 'null'}]", { anyOf: [Filter, { type: 'null' }] }, '3.1'],
    ["3.1 type: [object, 'null']", { ...Filter, type: ['object', 'null'] }, '3.1'],
  ] as const) {
    for (const style of ['deepObject', 'form'] as const) {
      const op = testOperation({
        id: 'op',
        method: 'GET',
        paths: ['/x'],
        pointer: '#/paths/~1x/get',
        dialect,
        parameters: [{ name: 'filter', in: 'query', style, explode: true, schema }],
      });
      let v: ReturnType<typeof validatorFor> | undefined;
      t.doesNotThrow(() => (v = compileRequestValidator(op, { unknownQuery: 'allow' })), `${what}, ${style}: loads`);
      if (!v) continue;
      const [status, extra] = style === 'deepObject' ? ['filter[status]', 'filter[isAdmin]'] : ['status', 'isAdmin'];
      t.equal(check(v, `?${status}=deleted`), '/query/filter/status', `${what}, ${style}: ${status}=deleted refused`);
      t.equal(check(v, `?${extra}=true`), style === 'deepObject' ? '/query/filter' : undefined, `${what}, ${style}: ${extra}`);
      t.equal(check(v, `?${status}=sold`), undefined, `${what}, ${style}: ${status}=sold passes`);
    }
  }
});

t.test('a free-form exploded object (a map) takes the query keys no other parameter owns', async (t) => {
  const parameters: ParameterObject[] = [
    {
      name: 'counts',
      in: 'query',
      schema: {
        type: 'object',
        properties: { n: { type: 'integer', minimum: 1 } },
        additionalProperties: { type: 'integer', maximum: 10 },
      },
    },
    { name: 'filter', in: 'query', style: 'deepObject', schema: { allOf: [Filter] } },
    { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 100 } },
  ];
  for (const unknownQuery of ['allow', 'refuse'] as const) {
    const v = validatorFor(parameters, unknownQuery);
    t.equal(check(v, '?x=1000'), '/query/counts/x', `${unknownQuery}: a key of the map, checked against additionalProperties`);
    t.equal(check(v, '?x=1&x=2'), '/query/counts/x', `${unknownQuery}: given twice`);
    t.equal(check(v, '?n=0'), '/query/counts/n', `${unknownQuery}: a declared property`);
    t.equal(check(v, '?x=0x5'), '/query/counts/x', `${unknownQuery}: number spellings`);
    t.equal(check(v, '?limit=1000'), '/query/limit', `${unknownQuery}: another parameter keeps its key`);
    t.equal(check(v, '?LIMIT=5'), '/query/LIMIT', `${unknownQuery}: a misread name is refused, not the map's`);
    t.equal(check(v, '?counts=5'), '/query/counts', `${unknownQuery}: the bare name is refused`);
    t.equal(check(v, '?x=1&y=10&n=3&limit=100&filter[status]=sold'), undefined, `${unknownQuery}: all valid`);
  }
  const untyped = validatorFor([{ name: 'm', in: 'query', schema: { allOf: [{ type: 'object', additionalProperties: true }] } }], 'refuse');
  t.equal(check(untyped, '?anything=1'), undefined, 'additionalProperties: true takes any key, also under unknown_query: refuse');
  const fixed = validatorFor([{ name: 'page', in: 'query', schema: Page }], 'refuse');
  t.equal(check(fixed, '?other=1'), '/query', 'an object that names its properties takes no other key (unknown_query: refuse)');
});

t.test('parameters Warden cannot decode are refused at load, naming the operation and the parameter', async (t) => {
  const refused = (parameters: ParameterObject[], message: RegExp, what: string) => {
    const err = t.throws(() => validatorFor(parameters), what) as unknown;
    t.ok(err instanceof OpenApiError);
    t.equal((err as OpenApiError).pointer, '#/paths/~1x/get');
    t.match((err as OpenApiError).message, message);
  };
  refused(
    [{ name: 'f', in: 'query', style: 'deepObject', schema: { type: 'string' } }],
    /^parameter "f" in query: style deepObject needs an object schema/,
    'deepObject of a string',
  );
  refused(
    [{ name: 'f', in: 'query', style: 'deepObject', schema: { anyOf: [Filter, { type: 'string' }] } }],
    /style deepObject needs an object schema/,
    'deepObject whose branches disagree',
  );
  refused(
    [{ name: 'f', in: 'query', schema: { properties: { a: { type: 'integer', maximum: 1 } } } }],
    /^parameter "f" in query: its schema constrains an object or an array but does not say which/,
    'an exploded form parameter with properties and no type',
  );
  refused(
    [{ name: 'h', in: 'header', schema: { items: { type: 'integer' } } }],
    /parameter "h" in header: its schema constrains/,
    'a header too',
  );
  refused(
    [
      { name: 'a', in: 'query', schema: { type: 'object', additionalProperties: true } },
      { name: 'b', in: 'query', schema: { type: 'object', patternProperties: { '^x': { type: 'string' } } } },
    ],
    /parameter "b" in query and parameter "a" in query are both exploded form objects/,
    'two maps',
  );
  // Still loaded: a single value of any type, a scalar without a type, a map beside a non-exploded one.
  t.ok(
    validatorFor([
      { name: 'q', in: 'query', schema: {} },
      { name: 'e', in: 'query', schema: { enum: ['a', 'b'] } },
    ]),
  );
  t.ok(
    validatorFor([
      { name: 'a', in: 'query', schema: { type: 'object', additionalProperties: true } },
      { name: 'b', in: 'query', explode: false, schema: { type: 'object', additionalProperties: true } },
    ]),
  );
});
