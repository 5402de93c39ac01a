/**
 * The OpenAPI formats on numbers, through a compiled request validator: int32 and int64 refuse
 * integers their backends cannot hold (a JSON number is a double here, so int64's bound is as
 * exact as a double is there).
 */
import t from 'tap';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import type { Operation } from '../../../src/openapi/operations.js';

const operation = (format: string): Operation => ({
  id: 'op',
  method: 'POST',
  paths: ['/x'],
  pointer: '#/paths/~1x/post',
  security: undefined,
  rateLimit: undefined,
  parameters: [],
  requestBody: {
    content: { 'application/json': { schema: { type: 'object', properties: { n: { type: 'integer', format } } } } },
  },
  responses: {},
  dialect: '3.1',
});

const verdict = (format: string, n: string) =>
  compileRequestValidator(operation(format), { unknownQuery: 'allow' }).body('application/json', { body: Buffer.from(`{"n":${n}}`) });

t.test('int64: integers within ±2^63 pass, larger ones are refused', async (t) => {
  for (const n of ['0', '-1', '9007199254740993', '9223372036854775807', '-9223372036854775808'])
    t.equal(verdict('int64', n), undefined, `${n} passes`);
  for (const n of ['9223372036854777856', '-9223372036854777856', '1e30', '-1e300'])
    t.match(verdict('int64', n), { pointer: '/body/n', message: /int64/ }, `${n} refused`);
});

t.test('int32: the 32-bit range', async (t) => {
  t.equal(verdict('int32', '2147483647'), undefined);
  t.equal(verdict('int32', '-2147483648'), undefined);
  t.match(verdict('int32', '2147483648'), { pointer: '/body/n' });
  t.match(verdict('int32', '-2147483649'), { pointer: '/body/n' });
});
