/**
 * Red team 27f (PHP frameworks), F2: on an operation that declares a JSON body beside another type
 * by name (`text/plain`, `application/octet-stream`), a JSON document sent under that other type was
 * forwarded unchecked, and Symfony's `Request::toArray()` and Laravel's `$request->json()` decode the
 * body whatever its type: `role=admin, is_admin=true` past the JSON schema. Such a body that parses
 * completely as JSON is now checked against the operation's JSON schema (rule `body.json_as_other`);
 * a note that only opens like JSON, and a JSON document the schema allows, pass as before.
 */
import t from 'tap';
import type { Operation } from '../../../src/openapi/operations.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';

const op = (content: Record<string, { schema?: Record<string, unknown> }>): Operation =>
  testOperation({ id: 'updateProfile', requestBody: { content } });
const body = (text: string | Buffer) => ({ body: Buffer.isBuffer(text) ? text : Buffer.from(text) });
const profile = {
  type: 'object',
  additionalProperties: false,
  properties: { name: { type: 'string', pattern: '^[a-z]+$' }, role: { type: 'string', enum: ['user'] } },
};
const v = compileRequestValidator(
  op({
    'application/json': { schema: profile },
    'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
    'text/plain': { schema: { type: 'string', maxLength: 2000 } },
    'application/xml': {},
  }),
  { unknownQuery: 'allow' },
);
const OTHER = ['text/plain', 'text/plain; charset=utf-8', 'application/octet-stream'];

t.test('a JSON document the JSON schema refuses, sent as another declared type, is refused', async (t) => {
  const refused = [
    '{"name":"eve","role":"admin","is_admin":true}',
    '{"role":"admin"}',
    ' \r\n{"name":"Eve"}',
    '\ufeff{"role":"admin"}',
    '{"ROLE":"admin"}',
  ];
  for (const type of OTHER)
    for (const text of refused) {
      const verdict = await v.body(type, body(text));
      t.match(verdict, { pointer: /^\/body/, rule: 'body.json_as_other' }, `${type}: ${JSON.stringify(text)}`);
      t.match(verdict, { message: /toArray\(\)/ }, 'the message names the reading');
    }
  t.match(await v.body('application/json', body(refused[0] as string)), { pointer: '/body' }, 'as JSON: refused as before');
});

t.test('a JSON document that is not interoperable, sent as another type, is refused (PHP keeps the last member)', async (t) => {
  for (const text of ['{"role":"user","role":"admin"}', '{"role":"user","n":1e999}']) {
    t.match(await v.body('text/plain', body(text)), { pointer: '/body', rule: 'body.json_as_other' }, text);
  }
  const latin1 = Buffer.concat([Buffer.from('{"role":"admin","x":"'), Buffer.from([0xe9]), Buffer.from('"}')]);
  t.match(await v.body('application/octet-stream', body(latin1)), { pointer: '/body', rule: 'body.json_as_other' }, 'not UTF-8');
});

t.test('a body that is no JSON document, or one the JSON schema allows, passes', async (t) => {
  const passing = [
    '[1] first point',
    '{not json',
    '[network]\nhost=x',
    '{"role":"user"} and a note after it',
    'role=admin',
    'a plain note',
    '"role"',
    '42',
    '{"name":"eve","role":"user"}',
    '{}',
    // A root of another type than the JSON schema's: nothing it limits (review rt27 F3).
    '[{"role":"user"}]',
    '[]',
  ];
  for (const type of OTHER) for (const text of passing) t.equal(await v.body(type, body(text)), undefined, `${type}: ${text}`);
  t.equal(await v.body('application/xml', body('<role>admin</role>')), undefined, 'XML as before');
  t.equal(await v.body('text/plain', body(Buffer.from([0x89, 0x50, 0x4e, 0x47]))), undefined, 'binary as before');
});

t.test('an operation without a JSON body: a JSON document in its other type is forwarded as before', async (t) => {
  const notes = compileRequestValidator(op({ 'text/plain': { schema: { type: 'string' } } }), { unknownQuery: 'allow' });
  t.equal(await notes.body('text/plain', body('{"role":"admin"}')), undefined);
});

t.test('several JSON types: a document any of them allows passes', async (t) => {
  const two = compileRequestValidator(
    op({
      'application/json': { schema: profile },
      'application/merge-patch+json': { schema: { type: 'object', properties: { role: { enum: ['user', 'admin'] } } } },
      'text/plain': {},
    }),
    { unknownQuery: 'allow' },
  );
  t.equal(await two.body('text/plain', body('{"role":"admin"}')), undefined, 'allowed by the merge patch');
  t.match(await two.body('text/plain', body('{"role":"root"}')), { pointer: '/body/role', rule: 'body.json_as_other' });
});

t.test('timing: a large body under another type costs about what the same body as JSON does', async (t) => {
  const loose = compileRequestValidator(
    op({
      'application/json': { schema: { type: 'array', items: { type: 'object', properties: { role: { enum: ['user'] } } } } },
      'text/plain': {},
      'application/octet-stream': {},
    }),
    { unknownQuery: 'allow' },
  );
  const time = async (type: string, text: Buffer) => {
    let best = Infinity;
    let verdict: unknown;
    // Best of three, once at 10 MiB (the file's time: each run is ~0.3 s there).
    for (let run = 0; run < (text.length > 2 << 20 ? 1 : 3); run++) {
      const start = performance.now();
      verdict = await loose.body(type, { body: text });
      best = Math.min(best, performance.now() - start);
    }
    return { ms: best, verdict };
  };
  for (const size of [16 << 10, 1 << 20, 10 << 20]) {
    const item = '{"role":"user"},';
    const items = item.repeat(Math.floor(size / item.length));
    const shapes: [string, Buffer, boolean][] = [
      ['a JSON document the schema allows', Buffer.from(`[${items}{"role":"user"}]`), false],
      ['one whose last item it refuses', Buffer.from(`[${items}{"role":"admin"}]`), true],
      ['a note opening like JSON', Buffer.from(`[1] ${'first point, '.repeat(size / 13)}`), false],
      ['an unclosed document', Buffer.from(`[${items}`), false],
      ['a member named twice at the end', Buffer.from(`[${items}{"role":"user","role":"admin"}]`), true],
      ['white space then text', Buffer.from(`${' '.repeat(size)}x`), false],
    ];
    for (const [label, text, refused] of shapes) {
      const other = await time('application/octet-stream', text);
      const asJson = size <= 1 << 20 ? (await time('application/json', text)).ms.toFixed(1) : 'not timed';
      t.comment(`${label}, ${text.length} bytes: ${other.ms.toFixed(1)} ms (as application/json: ${asJson} ms)`);
      if (refused) t.match(other.verdict, { rule: 'body.json_as_other' }, `${label} (${size}): refused`);
      else t.equal(other.verdict, undefined, `${label} (${size}): passes`);
      t.ok(other.ms < 3000, `${label} (${size}): ${other.ms.toFixed(0)} ms`);
    }
  }
});
