/**
 * Red team 27f (PHP frameworks), F1: a JSON member literally named `"user.role"` passed validation
 * as an undeclared extra, and Laravel's `Arr::get`/`Arr::has` (`$request->all(['user.role'])`,
 * `has()`) and lodash's `_.get`/`_.has` take a literal dotted key before they walk the path: the app
 * read `user.role = "admin"`, past the nested property's enum. A member name holding `.` whose
 * dot-split path names a declared nested property is now refused; undeclared dotted names pass.
 */
import t from 'tap';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';

const role = { type: 'string', enum: ['user'] };
const schema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    user: {
      type: 'object',
      properties: { role, profile: { type: 'object', properties: { 'a.b': role, a: { type: 'object', properties: { b: role } } } } },
    },
    items: { type: 'array', items: { type: 'object', properties: { role } } },
    'x.y': role,
    labels: { type: 'object', additionalProperties: { type: 'object', properties: { role } } },
  },
};
const v = compileRequestValidator(testOperation({ requestBody: { content: { 'application/json': { schema } } } }), {
  unknownQuery: 'allow',
});
const json = (value: unknown) => ({ body: Buffer.from(JSON.stringify(value)) });

t.test('a member named as the dotted path of a declared nested property is refused', async (t) => {
  const cases: [unknown, string][] = [
    [{ name: 'eve', 'user.role': 'admin' }, '/body/user.role'],
    [{ name: 'eve', user: { role: 'user' }, 'user.role': 'admin' }, '/body/user.role'],
    [{ 'user.profile.a.b': 'admin' }, '/body/user.profile.a.b'],
    [{ user: { 'profile.a.b': 'admin' } }, '/body/user/profile.a.b'],
    [{ user: { profile: { 'a.b': 'user', a: { b: 'user' } }, 'profile.a': { b: 'admin' } } }, '/body/user/profile.a'],
    [{ 'items.0.role': 'admin' }, '/body/items.0.role'],
    [{ items: [{ role: 'user' }], 'items.12.role': 'admin' }, '/body/items.12.role'],
    [{ 'labels.k.role': 'admin' }, '/body/labels.k.role'],
  ];
  for (const [value, pointer] of cases) {
    const verdict = await v.body('application/json', json(value));
    t.match(verdict, { pointer, message: /Arr::get.*_\.get/ }, JSON.stringify(value));
  }
});

t.test('undeclared dotted names, declared ones and map keys pass', async (t) => {
  for (const value of [
    { name: 'eve', 'meta.x': 1 },
    { 'user.x': 'admin' },
    { 'user.role.x': 'admin' },
    { 'x.y': 'user' },
    { 'name.': 1, '.name': 1, 'user..role': 1, 'items.01.role': 1, 'items.x.role': 1 },
    { user: { profile: { 'a.b': 'user' } } },
    { labels: { 'user.role': { role: 'user' } } },
    { user: { profile: {}, 'profile.a': {} } },
  ]) {
    t.equal(await v.body('application/json', json(value)), undefined, JSON.stringify(value));
  }
});

t.test('a long dotted name is read in one pass', async (t) => {
  // A dereferenced recursive schema (as the loader makes one): `a.a.a…` is declared at every depth.
  const node: Record<string, unknown> = { type: 'object', properties: { role } };
  (node.properties as Record<string, unknown>).a = node;
  const recursive = compileRequestValidator(testOperation({ requestBody: { content: { 'application/json': { schema: node } } } }), {
    unknownQuery: 'allow',
  });
  // Past MAX_JSON_DEPTH segments, no path is read: an app reads short literal paths.
  t.equal(await recursive.body('application/json', json({ [`${'a.'.repeat(1000)}role`]: 1 })), undefined, '1001 segments: not read');
  for (const size of [16 << 10, 1 << 20, 10 << 20]) {
    for (const [label, key, validator] of [
      ['user. + a', `user.${'a'.repeat(size)}`, v],
      ['.a repeated', '.a'.repeat(size / 2), v],
      ['user.profile. + .a repeated', `user.profile${'.a'.repeat(size / 2)}`, v],
      ['a. repeated, recursive schema', `${'a.'.repeat(size / 2)}x`, recursive],
    ] as const) {
      const doc = Buffer.from(`{${JSON.stringify(key)}:1}`);
      const start = performance.now();
      const verdict = await validator.body('application/json', { body: doc });
      const ms = performance.now() - start;
      t.comment(`${label}, ${size} bytes: ${ms.toFixed(1)} ms`);
      t.equal(verdict, undefined, `${label} (${size}): passes`);
      t.ok(ms < 2000, `${label} (${size}): ${ms.toFixed(0)} ms`);
    }
    // Declared all the way down: refused, the message cut short.
    const doc = Buffer.from(`{${JSON.stringify(`${'a.'.repeat(Math.min(size / 2, 999))}role`)}:1}`);
    const start = performance.now();
    const verdict = await recursive.body('application/json', { body: doc });
    const ms = performance.now() - start;
    t.comment(`a. repeated then role (1000 segments at most), recursive schema, ${size} bytes: ${ms.toFixed(1)} ms (refused)`);
    t.match(verdict, { message: /^is read as the property "a\.a\..{90,}…" by .*; there, its value must be string$/ }, 'refused');
    t.ok(((verdict as { message: string }) ?? { message: '' }).message.length < 400, 'a short message');
    t.ok(ms < 2000, `refused in ${ms.toFixed(0)} ms`);
  }
});
