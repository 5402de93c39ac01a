/**
 * A body matched only by a range key (`*\/*`, `text/*`) in a type Warden does not parse skipped the
 * key's schema: `{"role":"admin"}` as text/plain or application/octet-stream passed a `*\/*` schema
 * allowing only `user`, and `express.json({type: '*\/*'})` read it as JSON (red-team round,
 * 01-leads.mjs). Where that schema describes an object or an array, such a body is refused (415);
 * an upload's binary string, or no schema, still forwards unvalidated, as a declared non-JSON key does.
 */
import t from 'tap';
import type { Operation } from '../../../src/openapi/operations.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { describesStructuredData } from '../../../src/openapi/structured-schema.js';
import { testOperation } from '../../support/operation.js';

const op = (content: Record<string, { schema?: Record<string, unknown> }>): Operation =>
  testOperation({ id: 'create', requestBody: { required: true, content } });
const body = (text: string) => ({ body: Buffer.from(text) });
const role = { type: 'object', additionalProperties: false, properties: { role: { type: 'string', enum: ['user'] } } };
const admin = '{"role":"admin"}';

t.test('a */* key whose schema is an object: a body Warden does not parse is refused, naming what it checks', async (t) => {
  const v = compileRequestValidator(op({ '*/*': { schema: role } }), { unknownQuery: 'allow' });
  for (const type of ['text/plain', 'application/octet-stream', 'application/xml', 'multipart/mixed; boundary=x', 'x/y']) {
    t.same(
      await v.body(type, body(admin)),
      { checkable: 'application/json, application/x-www-form-urlencoded, multipart/form-data or a +json type' },
      type,
    );
  }
  t.match(await v.body('application/json', body(admin)), { pointer: '/body/role' }, 'JSON is still checked');
  t.match(await v.body('application/vnd.x+json', body(admin)), { pointer: '/body/role' }, '+json too');
  t.equal(await v.body('application/json', body('{"role":"user"}')), undefined);
  t.match(await v.body('application/x-www-form-urlencoded', body('role=admin')), { pointer: '/body/role' }, 'a form is checked');
});

t.test('a body typed as the range key itself (*/*, text/*) is one Warden does not parse: refused too', async (t) => {
  // The key matched was the media type itself, and the body was forwarded unvalidated (red team 27a,
  // F3: Falcon reads `*/*` as JSON, `role=admin` passed). The Content-Type is refused before this
  // (content_type.media_range); validation in report mode still reports the body.
  const v = compileRequestValidator(op({ '*/*': { schema: role }, 'text/*': { schema: role } }), { unknownQuery: 'allow' });
  t.same(await v.body('*/*', body(admin)), {
    checkable: 'application/json, application/x-www-form-urlencoded, multipart/form-data or a +json type',
  });
  t.same(await v.body('*/*; q=1', body('role=admin')), {
    checkable: 'application/json, application/x-www-form-urlencoded, multipart/form-data or a +json type',
  });
  t.same(await v.body('text/*', body(admin)), { checkable: 'text/json or a +json type' });
  const upload = compileRequestValidator(op({ '*/*': { schema: { type: 'string', format: 'binary' } } }), { unknownQuery: 'allow' });
  t.equal(await upload.body('*/*', body(admin)), undefined, 'a binary string under */*: forwarded as before');
});

t.test('a type/* key: the types within it that Warden parses', async (t) => {
  const v = compileRequestValidator(op({ 'application/*': { schema: role }, 'text/*': { schema: { type: 'array' } } }), {
    unknownQuery: 'allow',
  });
  t.same(await v.body('application/octet-stream', body(admin)), {
    checkable: 'application/json, application/x-www-form-urlencoded or a +json type',
  });
  t.same(await v.body('text/plain', body('[1]')), { checkable: 'text/json or a +json type' });
  t.match(await v.body('text/json', body('{}')), { pointer: '/body' }, 'text/json is read as JSON and checked');
  t.equal(await v.body('image/png', body('x')), 'unsupported', 'outside every key: 415 as before');
});

t.test('what still forwards unvalidated: uploads, no schema, a declared non-JSON key', async (t) => {
  const upload = compileRequestValidator(op({ '*/*': { schema: { type: 'string', format: 'binary' } } }), { unknownQuery: 'allow' });
  t.equal(await upload.body('application/octet-stream', body(admin)), undefined, 'a binary string under */*');
  t.equal(await upload.body('image/png', body('x')), undefined);
  const none = compileRequestValidator(op({ '*/*': {}, 'image/*': { schema: {} } }), { unknownQuery: 'allow' });
  t.equal(await none.body('text/plain', body(admin)), undefined, 'no schema');
  t.equal(await none.body('image/png', body(admin)), undefined, 'an empty schema');
  const xml = compileRequestValidator(op({ 'application/xml': { schema: role } }), { unknownQuery: 'allow' });
  t.equal(await xml.body('application/xml', body('<role>admin</role>')), undefined, 'a declared application/xml key');
});

t.test('which schemas describe structured data', async (t) => {
  for (const schema of [
    { type: 'object' },
    { type: 'array' },
    { type: ['string', 'object'] },
    { properties: { a: {} } },
    { additionalProperties: false },
    { items: {} },
    { required: ['a'] },
    { allOf: [{ description: 'x' }, { anyOf: [{ type: 'string' }, { properties: {} }] }] },
    { oneOf: [{ type: 'string' }, { type: 'array' }] },
    { if: { type: 'string' }, then: { minLength: 1 }, else: { type: 'object' } },
  ])
    t.ok(describesStructuredData(schema), JSON.stringify(schema));
  const recursive: Record<string, unknown> = { anyOf: [{ type: 'string' }] };
  (recursive.anyOf as unknown[]).push(recursive);
  for (const schema of [undefined, {}, { type: 'string', format: 'binary' }, { type: 'string' }, { not: { type: 'object' } }, recursive])
    t.notOk(describesStructuredData(schema), JSON.stringify(schema === recursive ? 'recursive' : schema));
});
