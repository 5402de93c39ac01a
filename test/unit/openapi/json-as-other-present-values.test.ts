/**
 * Review rt27 F3: `body.json_as_other` refused ordinary uploads that merely parse as JSON: a JSON
 * export sent as octet-stream to an import operation whose JSON schema is `{url}` (`/body/url is
 * required`), a JSON array file (`must be object`), a text/plain `{"debug": true}` note, `[]`, a
 * one-line NDJSON body. A missing member or a root of another type gives Symfony's toArray() and
 * Laravel's json() nothing the schema forbids: only a present value the JSON schema forbids is
 * refused now (the JSON schema without `required`, `minItems`, … : present-values.ts), and
 * JSON-sequence types are not read as one document at all.
 */
import t from 'tap';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';

const op = (content: Record<string, { schema?: Record<string, unknown> }>) => testOperation({ id: 'x', requestBody: { content } });
const body = (text: string) => ({ body: Buffer.from(text) });

const imp = compileRequestValidator(
  op({
    'application/json': { schema: { type: 'object', required: ['url'], properties: { url: { type: 'string', format: 'uri' } } } },
    'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
  }),
  { unknownQuery: 'allow' },
);
const paste = compileRequestValidator(
  op({
    'application/json': {
      schema: { type: 'object', additionalProperties: false, properties: { title: { type: 'string' }, text: { type: 'string' } } },
    },
    'text/plain': { schema: { type: 'string' } },
  }),
  { unknownQuery: 'allow' },
);
const role = { type: 'string', enum: ['user'] };
const profile = compileRequestValidator(
  op({
    'application/json': {
      schema: {
        type: 'object',
        required: ['name', 'email'],
        properties: {
          name: { type: 'string', pattern: '^[a-z]+$' },
          email: { type: 'string' },
          role,
          user: { type: 'object', required: ['id'], properties: { id: { type: 'integer' }, role } },
          tags: { type: 'array', minItems: 2, items: { type: 'string', enum: ['a', 'b'] } },
        },
      },
    },
    'text/plain': {},
    'application/octet-stream': {},
  }),
  { unknownQuery: 'allow' },
);
const bulk = compileRequestValidator(
  op({
    'application/json': {
      schema: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string' } } },
    },
    'application/x-ndjson': { schema: { type: 'string' } },
    'application/jsonl': {},
    'application/json-seq': {},
    'application/x-jsonlines': {},
  }),
  { unknownQuery: 'allow' },
);

t.test('ordinary uploads that parse as JSON but hold nothing the JSON schema forbids pass', async (t) => {
  const cases: [typeof imp, string, string][] = [
    [imp, 'application/octet-stream', JSON.stringify({ users: [{ id: 1, name: 'a' }] })],
    [imp, 'application/octet-stream', '[{"id":1},{"id":2}]'],
    [paste, 'text/plain', '[]'],
    [paste, 'text/plain', '[{"debug": true}]'],
    [profile, 'text/plain', '{}'],
    [profile, 'text/plain', '{"role":"user"}'],
    [profile, 'text/plain', '{"user":{"role":"user"}}'],
    [profile, 'text/plain', '{"tags":["a"]}'],
    [profile, 'text/plain', '"a string"'],
    [profile, 'application/octet-stream', '[1,2,3]'],
    [bulk, 'application/x-ndjson', '{"index":{"_id":"1"}}\n'],
    [bulk, 'application/x-ndjson', '{"index":{}}\n{"name":"a"}\n'],
    [bulk, 'application/jsonl', '{"index":{"_id":"1"}}\n'],
    [bulk, 'application/json-seq', '\u001e{"index":{"_id":"1"}}\n'],
    [bulk, 'application/x-jsonlines', '{"role":"admin"}'],
  ];
  for (const [validator, type, text] of cases) t.equal(await validator.body(type, body(text)), undefined, `${type}: ${text}`);
});

t.test('a present value the JSON schema forbids is still refused', async (t) => {
  const cases: [typeof imp, string, string, string][] = [
    [paste, 'text/plain', '{"debug": true, "level": 3}', '/body'],
    [profile, 'text/plain', '{"role":"admin"}', '/body/role'],
    [profile, 'text/plain', '{"name":"Eve"}', '/body/name'],
    [paste, 'text/plain', '{"title":"a","is_admin":true}', '/body'],
    [profile, 'text/plain', '{"ROLE":"admin"}', '/body/ROLE'],
    [profile, 'text/plain', '{"user.role":"admin"}', '/body/user.role'],
    [profile, 'text/plain', '{"user":{"role":"admin"}}', '/body/user/role'],
    [profile, 'text/plain', '{"user":{"id":"x"}}', '/body/user/id'],
    [profile, 'text/plain', '{"tags":["c"]}', '/body/tags/0'],
    // The allErrors trap: `name` and `email` missing, and `role: admin` present.
    [profile, 'application/octet-stream', '{"role":"admin"}', '/body/role'],
    [profile, 'application/octet-stream', '{"user":{"role":"admin"}}', '/body/user/role'],
    [imp, 'application/octet-stream', '{"url":"not a uri"}', '/body/url'],
  ];
  for (const [validator, type, text, pointer] of cases)
    t.match(await validator.body(type, body(text)), { pointer, rule: 'body.json_as_other' }, `${type}: ${text}`);
  t.match(
    await profile.body('application/json', body('{"role":"user"}')),
    { pointer: '/body/name', message: 'is required' },
    'as JSON: required as before',
  );
  t.match(await bulk.body('application/json', body('[]')), { pointer: '/body', message: /object/ }, 'as JSON: the root type as before');
});

t.test('oneOf branches told apart by required members: a document fitting either passes', async (t) => {
  const either = compileRequestValidator(
    op({
      'application/json': {
        schema: {
          oneOf: [
            { type: 'object', required: ['a'], properties: { a: { type: 'string' }, role: role } },
            { type: 'object', required: ['b'], properties: { b: { type: 'string' }, role: role } },
          ],
        },
      },
      'text/plain': {},
    }),
    { unknownQuery: 'allow' },
  );
  t.equal(await either.body('text/plain', body('{"role":"user"}')), undefined, 'fits both branches without their members');
  t.match(await either.body('text/plain', body('{"role":"admin"}')), { rule: 'body.json_as_other' }, 'fits neither');
});

t.test('an array schema reads an index-keyed object as PHP does; each declared JSON type is asked', async (t) => {
  // Third review rt27, F2: PHP's json_decode(…, true) reads {"0":{…}} as [{…}]; and a root of
  // another shape than the first JSON type's ended the search before a later array schema was asked.
  const rows = { type: 'array', items: { type: 'object', properties: { role } } };
  const list = compileRequestValidator(op({ 'application/json': { schema: rows }, 'text/plain': {} }), { unknownQuery: 'allow' });
  t.match(await list.body('text/plain', body('{"0":{"role":"admin"}}')), { pointer: '/body/0/role', rule: 'body.json_as_other' });
  t.match(await list.body('text/plain', body('{"0":{"role":"user"},"1":{"role":"admin"}}')), { pointer: '/body/1/role' });
  t.equal(await list.body('text/plain', body('{"0":{"role":"user"}}')), undefined, 'a valid one passes');
  t.equal(await list.body('text/plain', body('{"1":{"role":"admin"}}')), undefined, 'not 0…n-1: no list to PHP, another shape');
  const two = compileRequestValidator(
    op({
      'application/json': { schema: { type: 'object', properties: { name: { type: 'string' } } } },
      'application/vnd.bulk+json': { schema: rows },
      'text/plain': {},
    }),
    { unknownQuery: 'allow' },
  );
  t.match(
    await two.body('text/plain', body('[{"role":"admin"}]')),
    { pointer: '/body/0/role', rule: 'body.json_as_other' },
    'the array schema asked',
  );
  t.equal(await two.body('text/plain', body('[{"role":"user"}]')), undefined);
  t.equal(await two.body('text/plain', body('{"name":"a"}')), undefined);
});
