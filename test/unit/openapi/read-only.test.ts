/**
 * Read-only body properties are refused in requests (src/openapi/read-only.ts): a backend that binds
 * the whole body takes `role` or `id` from the caller (mass assignment). They leave `required`, which
 * holds for responses; `validation.read_only: allow` keeps ajv's reading (an annotation).
 */
import t from 'tap';
import type { Operation } from '../../../src/openapi/operations.js';
import { refuseReadOnlyProperties } from '../../../src/openapi/read-only.js';
import { compileRequestValidator, type ValidatorOptions } from '../../../src/openapi/request-validator.js';
import { compileResponseCheck } from '../../../src/openapi/response-validator.js';
import { testOperation } from '../../support/operation.js';

const Id = { type: 'string', readOnly: true };
const User = {
  type: 'object',
  required: ['id', 'name'],
  properties: {
    id: Id,
    name: { type: 'string' },
    // 3.0 ignores siblings of $ref, so documents put readOnly in an allOf beside it.
    role: { allOf: [{ enum: ['user', 'admin'] }], readOnly: true },
    owner: { allOf: [Id] },
  },
};
const op = (schema: Record<string, unknown>, type = 'application/json'): Operation =>
  testOperation({
    requestBody: { content: { [type]: { schema } } },
    responses: { '200': { content: { 'application/json': { schema } } } },
    dialect: '3.0',
  });
const validatorOf = (schema: Record<string, unknown>, options: Partial<ValidatorOptions> = {}, type?: string) =>
  compileRequestValidator(op(schema, type), { unknownQuery: 'allow', ...options });
const json = (value: unknown) => ({ body: Buffer.from(JSON.stringify(value)) });

t.test('a read-only property in a request body is refused, naming it', async (t) => {
  const v = validatorOf(User);
  t.equal(await v.body('application/json', json({ name: 'a' })), undefined, 'without it: valid, though `id` is required');
  for (const name of ['id', 'role', 'owner']) {
    t.same(
      await v.body('application/json', json({ name: 'a', [name]: 'admin' })),
      { pointer: `/body/${name}`, message: 'is read-only: the server sets it, and a request does not send it' },
      `${name} refused`,
    );
  }
  t.match(await v.body('application/json', json({ name: 'a', ID: 'x' })), { pointer: '/body/ID' }, 'a case variant too');
});

t.test('at any depth, through shared and self-containing schemas', async (t) => {
  const Node: Record<string, unknown> = { type: 'object', properties: { id: Id, label: { type: 'string' } } };
  (Node.properties as Record<string, unknown>).children = { type: 'array', items: Node };
  const v = validatorOf({ type: 'object', properties: { tree: Node, also: Node } });
  t.equal(await v.body('application/json', json({ tree: { label: 'a', children: [{ label: 'b' }] } })), undefined);
  t.match(await v.body('application/json', json({ tree: { children: [{ children: [{ id: 'x' }] }] } })), {
    pointer: '/body/tree/children/0/children/0/id',
  });
  t.match(await v.body('application/json', json({ also: { id: 'x' } })), { pointer: '/body/also/id' });
});

t.test('form fields are refused the same way', async (t) => {
  const v = validatorOf(User, {}, 'application/x-www-form-urlencoded');
  t.equal(await v.body('application/x-www-form-urlencoded', { body: Buffer.from('name=a') }), undefined);
  t.match(await v.body('application/x-www-form-urlencoded', { body: Buffer.from('name=a&role=admin') }), { pointer: '/body/role' });
});

t.test('read_only: allow keeps ajv’s reading; responses keep them, required', async (t) => {
  const allowed = validatorOf(User, { readOnly: 'allow' });
  t.equal(await allowed.body('application/json', json({ id: '1', name: 'a', role: 'admin' })), undefined);
  t.match(await allowed.body('application/json', json({ name: 'a' })), { pointer: '/body/id', message: 'is required' });
  const response = compileResponseCheck(op(User)).check;
  const headers = { 'content-type': 'application/json' };
  t.equal(response(200, headers, Buffer.from(JSON.stringify({ id: '1', name: 'a', role: 'user' }))), undefined);
  t.match(response(200, headers, Buffer.from('{"name":"a"}')), { message: /required property 'id'/ }, 'required in a response');
});

t.test('the document is not changed, and a schema without read-only properties is used as it is', async (t) => {
  const before = JSON.stringify(User);
  const copy = refuseReadOnlyProperties(User);
  t.not(copy, User);
  t.equal(JSON.stringify(User), before);
  const plain = { type: 'object', properties: { a: { type: 'string' } } };
  t.equal(refuseReadOnlyProperties(plain), plain);
  const onlyReadOnly = refuseReadOnlyProperties({ type: 'object', required: ['id'], properties: { id: Id } });
  t.notOk('required' in onlyReadOnly, 'an empty required list is dropped (draft-04 wants one name)');
});
