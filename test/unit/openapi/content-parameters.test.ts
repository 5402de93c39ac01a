/**
 * A parameter described by `content` (one media type and its schema) in place of `schema`: it was
 * checked against `{}`, so `?filter={"role":"admin"}` and `?filter=zzz` passed a schema allowing
 * only `{"role":"user"}` (red-team round, 01-leads.mjs). A JSON one is parsed and checked as a JSON
 * body is, without coercion; any other media type, or more than one, is refused at load.
 */
import t from 'tap';
import { OpenApiError } from '../../../src/openapi/document.js';
import type { ParameterObject } from '../../../src/openapi/operations.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';

const filterSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { role: { type: 'string', enum: ['user'] }, limit: { type: 'integer', maximum: 100 } },
};
const json = (schema: Record<string, unknown> = filterSchema) => ({ 'application/json': { schema } });
const compile = (parameters: ParameterObject[]) =>
  compileRequestValidator(testOperation({ method: 'GET', pointer: '#/paths/~1x/get', parameters }), { unknownQuery: 'allow' });
const q = (value: string) => `?filter=${encodeURIComponent(value)}`;

t.test('a JSON content parameter in the query is parsed and checked against its schema', async (t) => {
  const v = compile([{ name: 'filter', in: 'query', content: json() }]);
  const check = (search: string) => v.params({ params: {}, search, headers: {} });
  t.equal(check(q('{"role":"user"}')), undefined, 'valid');
  t.equal(check(q('{"role":"user","limit":5}')), undefined, 'valid, with a number');
  t.equal(check(''), undefined, 'absent and not required');
  t.match(check(q('{"role":"admin"}')), { pointer: '/query/filter/role' }, 'a value outside the enum');
  t.match(check(q('{"role":"user","admin":true}')), { pointer: '/query/filter' }, 'an additional property');
  t.same(check('?filter=zzz'), { pointer: '/query/filter', message: 'is not valid JSON' }, 'not JSON');
  t.same(check('?filter='), { pointer: '/query/filter', message: 'is not valid JSON' }, 'empty');
  t.same(
    check(q('{"role":"user","role":"admin"}')),
    { pointer: '/query/filter', message: 'is not valid JSON' },
    'duplicate members, as in a body',
  );
  t.match(check(q('{"role":"user","limit":"5"}')), { pointer: '/query/filter/limit', message: 'must be integer' }, 'not coerced');
  t.match(check(q('{"role":"user","limit":1e999999}')), { message: 'is not valid JSON' }, 'a number beyond a double');
  t.match(check(`${q('{"role":"user"}')}&filter=${encodeURIComponent('{"role":"admin"}')}`), { message: 'must be given once' });
  t.match(check('?filter[]=x'), { pointer: '/query/filter[]' }, 'a key a backend reads as filter');
});

t.test('required, and in the path, a header and a cookie', async (t) => {
  const v = compile([
    { name: 'filter', in: 'query', required: true, content: json() },
    { name: 'sel', in: 'path', required: true, content: json({ type: 'array', items: { type: 'integer' }, maxItems: 2 }) },
    { name: 'X-Filter', in: 'header', content: { 'application/vnd.x+json': { schema: { properties: { role: { enum: ['user'] } } } } } },
    { name: 'prefs', in: 'cookie', content: json() },
  ]);
  const check = (search: string, sel: string, headers: Record<string, string> = {}) => v.params({ params: { sel }, search, headers });
  const ok = q('{"role":"user"}');
  t.equal(check(ok, '[1,2]'), undefined, 'valid');
  t.match(check('', '[1,2]'), { pointer: '/query/filter', message: 'is required' }, 'a required one missing');
  t.match(check(ok, '[1,2,3]'), { pointer: '/path/sel' }, 'the path');
  t.match(check(ok, '1,2'), { pointer: '/path/sel', message: 'is not valid JSON' });
  t.equal(check(ok, '[1]', { 'x-filter': '{"role":"user"}' }), undefined, 'a header, +json');
  t.match(check(ok, '[1]', { 'x-filter': '{"role":"admin"}' }), { pointer: '/header/x-filter/role' });
  t.match(
    check(ok, '[1]', { 'x-filter': '{"Role":"admin"}' }),
    { pointer: '/header/x-filter/Role', message: /only in letter case/ },
    'a case variant',
  );
  t.equal(check(ok, '[1]', { cookie: `prefs=${encodeURIComponent('{"role":"user"}')}` }), undefined, 'a cookie, percent-encoded');
  t.match(check(ok, '[1]', { cookie: 'prefs={"role":"admin"}' }), { pointer: '/cookie/prefs/role' }, 'a cookie as sent');
  t.match(check(ok, '[1]', { cookie: 'prefs=zzz' }), { pointer: '/cookie/prefs', message: 'is not valid JSON' });
});

t.test('content Warden cannot read is refused at load, naming the parameter', async (t) => {
  t.throws(() => compile([{ name: 'filter', in: 'query', content: { 'application/xml': { schema: filterSchema } } }]), {
    constructor: OpenApiError,
    pointer: '#/paths/~1x/get',
    message: /parameter "filter" in query: content "application\/xml" cannot be checked/,
  });
  t.throws(() => compile([{ name: 'q', in: 'query', content: { 'text/plain': {} } }]), { message: /parameter "q" in query/ });
  t.throws(() => compile([{ name: 'filter', in: 'query', content: { ...json(), 'application/xml': { schema: filterSchema } } }]), {
    constructor: OpenApiError,
    message: /parameter "filter" in query: content lists 2 media types/,
  });
  t.throws(() => compile([{ name: 'filter', in: 'query', content: json({ type: 'string', pattern: '^(?=a)' }) }]), {
    constructor: OpenApiError,
    message: /parameter "filter" in query, content application\/json: schema\/pattern/,
  });
});
