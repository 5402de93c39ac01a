/**
 * Review rt27 F4: a member named as a dotted path (`"user.role"`, which Laravel's Arr::get and
 * lodash's _.get read before walking the path) was refused by its name when every segment was a
 * declared property, and passed otherwise: a path through a map (`teams.core.role` under
 * `additionalProperties` or `patternProperties`) passed with a value the schema refuses there, and
 * a valid value (`{"user.role":"user"}`, a Mongo-style `{"user.email":"a@b.c"}` PATCH) was refused.
 * Now the member's value is checked against the schema at the path it names.
 */
import t from 'tap';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';
import { hostSlowdown } from '../../support/host-load.js';

const role = { type: 'string', enum: ['user'] };
const schema = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string' },
    user: { type: 'object', required: ['id'], properties: { id: { type: 'integer' }, role, email: { type: 'string', format: 'email' } } },
    teams: { type: 'object', additionalProperties: { type: 'object', properties: { role } } },
    tags: { type: 'object', patternProperties: { '^[a-z]+$': { type: 'object', properties: { role } } }, additionalProperties: false },
    members: { type: 'array', items: { type: 'object', properties: { role } } },
    meta: { type: 'object', additionalProperties: false, properties: { a: { type: 'string' } } },
    pair: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'object', properties: { role } }] },
  },
};
const op = (s: Record<string, unknown>, dialect: '3.0' | '3.1' = '3.0') =>
  testOperation({ requestBody: { content: { 'application/json': { schema: s } } }, dialect });
const v = compileRequestValidator(op(schema), { unknownQuery: 'allow' });
const json = (value: unknown) => ({ body: Buffer.from(JSON.stringify(value)) });

t.test('a dotted path through a map, with a value the schema refuses there, is refused', async (t) => {
  const cases: [unknown, string][] = [
    [{ name: 'a', teams: { core: { role: 'user' } }, 'teams.core.role': 'admin' }, '/body/teams.core.role'],
    [{ name: 'a', 'teams.core': { role: 'admin' } }, '/body/teams.core'],
    [{ name: 'a', 'tags.x.role': 'admin' }, '/body/tags.x.role'],
    [{ name: 'a', 'tags.X': {} }, '/body/tags.X'],
    [{ name: 'a', 'user.role': 'admin' }, '/body/user.role'],
    [{ name: 'a', 'user.id': 'x' }, '/body/user.id'],
    [{ name: 'a', 'members.3.role': 'admin' }, '/body/members.3.role'],
    [{ name: 'a', user: { id: 1 }, 'user.email': 'not an address' }, '/body/user.email'],
  ];
  for (const [value, pointer] of cases)
    t.match(await v.body('application/json', json(value)), { pointer, message: /Arr::get.*; there, its value / }, JSON.stringify(value));
});

t.test('a dotted path whose value the schema allows there passes, and one that leaves the schema', async (t) => {
  for (const value of [
    { name: 'a', 'user.role': 'user' },
    { name: 'a', 'user.email': 'a@b.c' },
    { name: 'a', user: { id: 1, role: 'user' }, 'user.role': 'user' },
    { name: 'a', 'teams.core.role': 'user' },
    { name: 'a', 'teams.core': { role: 'user' } },
    { name: 'a', 'tags.x.role': 'user' },
    { name: 'a', 'members.0.role': 'user' },
    { name: 'a', 'meta.x': 'anything' },
    { name: 'a', 'user.phone': 'anything' },
  ]) {
    t.equal(await v.body('application/json', json(value)), undefined, JSON.stringify(value));
  }
});

t.test('a path through prefixItems (3.1) is refused by its name, as before', async (t) => {
  const v31 = compileRequestValidator(op(schema, '3.1'), { unknownQuery: 'allow' });
  t.match(await v31.body('application/json', json({ name: 'a', 'pair.1.role': 'user' })), { pointer: '/body/pair.1.role' });
  t.match(await v31.body('application/json', json({ name: 'a', 'teams.core.role': 'admin' })), { pointer: '/body/teams.core.role' });
  t.equal(await v31.body('application/json', json({ name: 'a', 'teams.core.role': 'user' })), undefined);
});

t.test('timing: hostile bodies of dotted names', async (t) => {
  // A recursive schema (as the loader dereferences one): `a.a.a…` has a place at every depth.
  const node: Record<string, unknown> = { type: 'object', properties: { role: { type: 'string' } } };
  (node.properties as Record<string, unknown>).a = node;
  node.additionalProperties = node;
  const recursive = compileRequestValidator(op(node), { unknownQuery: 'allow' });
  const time = async (validator: typeof v, text: string) => {
    const start = performance.now();
    const verdict = await validator.body('application/json', { body: Buffer.from(text) });
    return { ms: performance.now() - start, verdict };
  };
  for (const size of [16 << 10, 1 << 20, 10 << 20]) {
    const shapes: [string, typeof v, string][] = [];
    // Many valid dotted names at the root.
    const keys: string[] = [];
    for (let i = 0, n = 0; n < size; i++) {
      const k = `"teams.t${i}.role":"user"`;
      keys.push(k);
      n += k.length + 1;
    }
    shapes.push(['valid map paths at the root', v, `{"name":"a",${keys.join(',')}}`]);
    // Valid dotted names 900 levels down a recursive schema: each check validates a document as deep.
    const deep = 900;
    const inner: string[] = [];
    for (let i = 0, n = 0; n < size - deep * 6; i++) {
      const k = `"k${i}.role":"u"`;
      inner.push(k);
      n += k.length + 1;
    }
    // Past 100 000 path keys checked, a dotted name with a place is refused by its name.
    shapes.push(['valid dotted names 900 levels down', recursive, `${'{"a":'.repeat(deep)}{${inner.join(',')}}${'}'.repeat(deep)}`]);
    // Dotted names nested in dotted names' values: each value is checked once, not once per level.
    const nest = Math.min(900, Math.floor(size / 20));
    const filler = `"f":{"role":"${'y'.repeat(Math.max(0, size - nest * 12))}"}`;
    shapes.push(['dotted names nested in their values', recursive, `${'{"a.x":'.repeat(nest)}{${filler}}${'}'.repeat(nest)}`]);
    for (const [label, validator, text] of shapes) {
      const { ms, verdict } = await time(validator, text);
      t.comment(
        `${label}, ${text.length} bytes: ${ms.toFixed(1)} ms (${verdict === undefined ? 'passes' : `refused: ${JSON.stringify(verdict).slice(0, 80)}`})`,
      );
      // Scaled by the host's load per core: a suite beside other work measured 3.9–5 s at 10 MiB (a quadratic reading takes minutes).
      t.ok(ms < 3000 * hostSlowdown(), `${label} (${size}): ${ms.toFixed(0)} ms`);
    }
  }
});
