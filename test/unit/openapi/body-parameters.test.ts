/**
 * A body field named as a query or path parameter: `POST /items?limit=5` with the form body
 * `name=x&limit=1000` passed, and CPython's cgi.FieldStorage (Rails' params, PHP's $_REQUEST too)
 * read `limit` as 1000, past the query's `maximum: 100` (red-team round, 02-body-params.mjs).
 * Refused — form, multipart and top-level JSON names, and their readings — unless the body's schema
 * declares the name itself.
 */
import t from 'tap';
import type { Operation, ParameterObject } from '../../../src/openapi/operations.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';

const parameters: ParameterObject[] = [
  { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 100 } },
  { name: 'filter', in: 'query', style: 'deepObject', explode: true, schema: { type: 'object', properties: { color: {} } } },
  { name: 'page', in: 'query', schema: { type: 'object', properties: { size: { type: 'integer', maximum: 50 } } } },
  { name: 'itemId', in: 'path', required: true, schema: { type: 'integer' } },
];
const item = { type: 'object', properties: { name: { type: 'string', maxLength: 20 }, note: {} } };
const op = (params: ParameterObject[], schema: Record<string, unknown> = item): Operation =>
  testOperation({
    parameters: params,
    requestBody: {
      content: {
        'application/x-www-form-urlencoded': { schema },
        'multipart/form-data': { schema },
        'application/json': { schema },
      },
    },
  });
const validator = compileRequestValidator(op(parameters), { unknownQuery: 'allow' });
const form = (text: string) => validator.body('application/x-www-form-urlencoded', { body: Buffer.from(text) });
const json = (text: string) => validator.body('application/json', { body: Buffer.from(text) });
const multipart = (name: string) =>
  validator.body('multipart/form-data; boundary=b', {
    body: Buffer.from(`--b\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n1000\r\n--b--\r\n`),
  });

t.test('a form field named as a query parameter, or read as one, is refused', async (t) => {
  t.equal(await form('name=x&note=y'), undefined, 'the body’s own fields');
  t.match(await form('name=x&limit=1000'), { pointer: '/body/limit', message: /query parameter "limit".*merge the query and the body/ });
  for (const [field, parameter] of [
    ['limit[]', 'limit'],
    ['LIMIT', 'limit'],
    ['limit%00', 'limit'],
    ['[limit]', 'limit'],
    ['filter[color]', 'filter[color]'],
    ['filter', 'filter'],
    ['size', 'size'],
    ['Size', 'size'],
  ] as const)
    t.match(
      await form(`name=x&${field}=1000`),
      { pointer: `/body/${decodeURIComponent(field)}`, message: new RegExp(`"${parameter.replace(/[[\]]/g, '\\$&')}"`) },
      field,
    );
  t.match(await form('itemId=7'), { pointer: '/body/itemId', message: /path parameter "itemId"/ }, 'a path parameter');
  t.equal(await form('name=x&limits=1&other=2'), undefined, 'other names');
});

t.test('multipart fields and top-level JSON members too, not deeper members', async (t) => {
  t.match(await multipart('limit'), { pointer: '/body/limit' });
  t.match(await multipart('limit[]'), { pointer: '/body/limit[]' });
  t.equal(await multipart('note'), undefined);
  t.match(await json('{"name":"x","limit":1000}'), { pointer: '/body/limit', message: /query parameter "limit"/ });
  t.match(await json('{"name":"x","LIMIT":1000}'), { pointer: '/body/LIMIT' });
  t.equal(await json('{"name":"x","note":"limit"}'), undefined);
  t.equal(await json('{"name":"x","note":{"limit":1000}}'), undefined, 'a deeper member');
});

t.test('a name the body schema declares is its own, checked by that schema', async (t) => {
  const own = compileRequestValidator(
    op(parameters, { type: 'object', properties: { limit: { type: 'integer', maximum: 10 }, size: {}, itemId: {} } }),
    { unknownQuery: 'allow' },
  );
  const post = (text: string) => own.body('application/x-www-form-urlencoded', { body: Buffer.from(text) });
  t.equal(await post('limit=5&size=1&itemId=7'), undefined);
  t.match(await post('limit=50'), { pointer: '/body/limit', message: 'must be <= 10' }, 'by the body’s schema');
  t.match(await post('limit[]=5'), { pointer: '/body/limit[]' }, 'its readings refused as the body’s own (name-readings.ts)');
  t.match(await post('filter=x'), { pointer: '/body/filter' }, 'others still refused');
});

t.test('an operation without query or path parameters checks nothing more', async (t) => {
  const none = compileRequestValidator(op([{ name: 'x-limit', in: 'header', schema: {} }]), { unknownQuery: 'allow' });
  t.equal(await none.body('application/x-www-form-urlencoded', { body: Buffer.from('limit=1000&x-limit=1') }), undefined);
});
