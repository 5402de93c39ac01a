/**
 * A query key named as a body property (row 204 the other way round): `POST /v1/users?role=admin&is_admin=1`
 * with the form `name=eve` passed under `unknown_query: allow`, and PHP's $_REQUEST (request_order=GP),
 * Laravel's input() and Symfony's Request::get() read role=admin and is_admin=1 as the body's,
 * past its enum and readOnly (red-team round 21b, F2). Refused unless declared as a query parameter.
 */
import t from 'tap';
import type { ParameterObject } from '../../../src/openapi/operations.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';

const user = {
  type: 'object',
  properties: { name: { type: 'string' }, role: { enum: ['user'] }, is_admin: { readOnly: true }, limit: { type: 'integer' } },
};
const validatorFor = (parameters: ParameterObject[], unknownQuery: 'allow' | 'refuse' = 'allow') =>
  compileRequestValidator(
    testOperation({
      parameters,
      requestBody: {
        content: {
          'application/x-www-form-urlencoded': { schema: user },
          'application/json': { schema: { type: 'object', properties: { nick: {} } } },
        },
      },
    }),
    { unknownQuery },
  );
const limit: ParameterObject = { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 100 } };

for (const [label, parameters] of [
  ['with query parameters', [limit]],
  ['with none', []],
] as [string, ParameterObject[]][]) {
  t.test(`a query key named as a body property is refused (${label})`, async (t) => {
    const v = validatorFor(parameters);
    const query = (search: string) => v.params({ params: {}, search, headers: {} });
    t.match(query('?role=admin'), { pointer: '/query/role', message: /body property "role".*merge the query and the body/ });
    t.match(query('?x=1&is_admin=1'), { pointer: '/query/is_admin' });
    t.match(query('?nick=a'), { pointer: '/query/nick' }, 'a property of another media type’s schema');
    for (const key of ['role[]', 'ROLE', 'role%00', 'is.admin', '[role]']) t.match(query(`?${key}=admin`), { pointer: /^\/query\// }, key);
    t.equal(query('?other=1'), undefined, 'other unknown keys pass (unknown_query: allow)');
    t.equal(query(''), undefined);
  });
}

t.test('a declared query parameter of the same name is checked as declared', async (t) => {
  const v = validatorFor([limit]);
  const query = (search: string) => v.params({ params: {}, search, headers: {} });
  t.equal(query('?limit=5'), undefined);
  t.match(query('?limit=1000'), { pointer: '/query/limit', message: /<= 100/ });
});

t.test('an operation without a body schema is not concerned', async (t) => {
  const v = compileRequestValidator(testOperation({ parameters: [] }), { unknownQuery: 'allow' });
  t.equal(v.params({ params: {}, search: '?role=admin', headers: {} }), undefined);
});
