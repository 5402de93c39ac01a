/**
 * Request body and response content keys are matched by media type alone, as a message's
 * Content-Type is: a key written with parameters (`application/json; charset=utf-8`) matched
 * nothing — every body got 415 (defect 173), and every response was reported as of an undeclared
 * type, its schema never applied. Two keys of one media type are refused at load.
 */
import t from 'tap';
import { OpenApiError } from '../../../src/openapi/document.js';
import type { Operation } from '../../../src/openapi/operations.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { compileResponseCheck } from '../../../src/openapi/response-validator.js';
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

const responding = (content: Record<string, { schema?: Record<string, unknown> }>): Operation =>
  testOperation({ id: 'getPet', method: 'GET', pointer: '#/paths/~1x/get', responses: { '200': { content } } });
const pet = { type: 'object', required: ['id'], properties: { id: { type: 'integer' } }, additionalProperties: false };

t.test('a response key with parameters applies to its media type', async (t) => {
  const { check } = compileResponseCheck(responding({ 'Application/JSON; charset=utf-8': { schema: pet } }));
  for (const type of ['application/json; charset=utf-8', 'application/json', 'APPLICATION/JSON;charset=UTF-8']) {
    const headers = { 'content-type': type };
    t.equal(check(200, headers, Buffer.from('{"id":1}')), undefined, `${type}: valid`);
    t.match(check(200, headers, Buffer.from('{"id":"x"}')), { pointer: '/body/id' }, `${type}: the schema applied`);
  }
  t.match(check(200, { 'content-type': 'text/plain' }, Buffer.from('x')), { pointer: '/content-type' }, 'another type is still undeclared');
});

t.test('two response keys of one media type are refused at load, naming the second', async (t) => {
  t.throws(() => compileResponseCheck(responding({ 'application/json; charset=utf-8': { schema: pet }, 'application/JSON': {} })), {
    constructor: OpenApiError,
    pointer: '#/paths/~1x/get/responses/200/content/application~1JSON',
    message: /is the media type of "application\/json; charset=utf-8" too/,
  });
});
