/**
 * Request body content keys are matched by media type alone, as a request's Content-Type is: a key
 * written with parameters (`application/json; charset=utf-8`) matched nothing, and every body got
 * 415 (defect 173). Two keys of one media type are refused at load.
 */
import t from 'tap';
import { OpenApiError } from '../../../src/openapi/document.js';
import type { Operation } from '../../../src/openapi/operations.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';

const op = (content: Record<string, { schema?: Record<string, unknown> }>): Operation =>
  testOperation({ id: 'create', requestBody: { content } });
const json = (text: string) => ({ body: Buffer.from(text) });
const schema = { type: 'object', properties: { role: { enum: ['user'] } } };

t.test('a key with parameters applies to its media type', async (t) => {
  const validator = compileRequestValidator(op({ 'Application/JSON; charset=utf-8': { schema } }), { unknownQuery: 'allow' });
  for (const type of ['application/json; charset=utf-8', 'application/json', 'APPLICATION/JSON;charset=UTF-8']) {
    t.equal(await validator.body(type, json('{"role":"user"}')), undefined, `${type}: valid`);
    t.match(await validator.body(type, json('{"role":"admin"}')), { pointer: '/body/role' }, `${type}: validated, not 415`);
  }
  t.equal(await validator.body('text/plain', json('{"role":"admin"}')), 'unsupported', 'another type is still 415');
});

t.test('two keys of one media type are refused at load, naming the second', async (t) => {
  t.throws(
    () => compileRequestValidator(op({ 'application/json': { schema }, 'application/json; charset=utf-8': {} }), { unknownQuery: 'allow' }),
    {
      constructor: OpenApiError,
      pointer: '#/paths/~1x/post/requestBody/content/application~1json; charset=utf-8',
      message: /is the media type of "application\/json" too/,
    },
  );
});
