import t from 'tap';
import { Ajv } from 'ajv';
import { acyclicSchema, MAX_SUBSCHEMAS, SchemaTooLarge } from '../../../src/openapi/acyclic-schema.js';
import { OpenApiError } from '../../../src/openapi/document.js';
import { compileNumberSpellings } from '../../../src/openapi/number-spellings.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { CaseVariantFinder, caseVariantOf, declaredNames, foldCase, topLevelNames } from '../../../src/openapi/case-variants.js';
import { testOperation } from '../../support/operation.js';

/** A dereferenced recursive schema: a node whose children are nodes, and a shared (acyclic) leaf. */
function recursiveNode(): Record<string, unknown> {
  const leaf = { type: 'string', maxLength: 3 };
  const node: Record<string, unknown> = { type: 'object', required: ['id'], properties: { id: leaf, label: leaf } };
  (node.properties as Record<string, unknown>).children = { type: 'array', items: node };
  return node;
}

t.test('acyclicSchema: a schema without cycles is returned as it is', async (t) => {
  const leaf = { type: 'string' };
  const schema = { type: 'object', properties: { a: leaf, b: leaf } };
  t.equal(acyclicSchema(schema), schema);
});

t.test('acyclicSchema: a self-containing schema compiles and validates at every depth', async (t) => {
  const node = recursiveNode();
  t.throws(() => new Ajv().compile(node), RangeError, 'ajv cannot walk the cycle itself');
  const validate = new Ajv().compile(acyclicSchema(node));
  t.ok(validate({ id: 'a', children: [{ id: 'b', children: [{ id: 'c' }] }] }));
  t.notOk(validate({ id: 'a', children: [{ id: 'b', children: [{ label: 'no id' }] }] }), 'missing id two levels down');
  t.notOk(validate({ id: 'a', children: [{ id: 'toolong' }] }), 'the shared leaf still applies');
  const deep = { id: 'x', children: [] as unknown[] };
  let at = deep;
  for (let i = 0; i < 500; i++) {
    const next = { id: 'x', children: [] as unknown[] };
    at.children.push(next);
    at = next;
  }
  t.ok(validate(deep), '500 levels');
});

t.test("acyclicSchema: mutual recursion, beside a definitions keyword of the schema's own", async (t) => {
  const a: Record<string, unknown> = { type: 'object', definitions: { own: { type: 'integer' } }, properties: {} };
  const b: Record<string, unknown> = { type: 'object', properties: { a } };
  (a.properties as Record<string, unknown>).b = b;
  const validate = new Ajv({ strict: false }).compile(acyclicSchema({ type: 'object', properties: { a } }));
  t.ok(validate({ a: { b: { a: { b: {} } } } }));
  t.notOk(validate({ a: { b: { a: 5 } } }), 'a must be an object at depth');
});

t.test('foldCase and caseVariantOf: what case-insensitive binders read as the same name', async (t) => {
  t.equal(foldCase('ROLE'), 'role');
  t.equal(foldCase('\u017Ftatus'), 'status', 'ſ folds to s');
  t.equal(foldCase('\u212Aind'), 'kind', 'the Kelvin sign folds to k');
  t.equal(foldCase('\u0131d'), 'id', 'dotless ı folds to i');
  t.equal(foldCase('\u0130d'), 'id', 'dotted İ folds to i (Java), not to i and U+0307');
  t.equal(foldCase('\u0130\u0130'), 'ii', 'each of them');
  t.equal(foldCase('\u0307x'), '\u0307x', 'a combining dot above on another letter stays');
  const names = declaredNames(['role', 'userId']);
  if (!names) throw new Error('names');
  t.equal(caseVariantOf('role', names), undefined, 'declared');
  t.equal(caseVariantOf('Role', names), 'role');
  t.equal(caseVariantOf('USERID', names), 'userId');
  t.equal(caseVariantOf('user\u0130d', names), 'userId', 'userİd: userId to Java equalsIgnoreCase');
  t.equal(caseVariantOf('nickname', names), undefined, 'unrelated');
  t.equal(declaredNames([]), undefined);
});

t.test('CaseVariantFinder: names declared for the object at hand, through compositions, items and recursion', async (t) => {
  const schema = {
    allOf: [
      { type: 'object', properties: { name: { type: 'string' } } },
      {
        type: 'object',
        properties: {
          labels: { type: 'object', additionalProperties: { type: 'string' } },
          extra: { type: 'object', additionalProperties: { type: 'object', properties: { code: { type: 'string' } } } },
          tree: recursiveNode(),
          pair: {
            type: 'array',
            prefixItems: [
              { type: 'object', properties: { left: {} } },
              { type: 'object', properties: { right: {} } },
            ],
          },
        },
      },
    ],
  };
  const finder = new CaseVariantFinder(schema);
  const find = (v: unknown) => finder.find(v, '/body');
  t.equal(find({ name: 'a', labels: { Name: 'x' } }), undefined, "a map's keys are the client's");
  t.same(find({ NAME: 'a' }), { pointer: '/body/NAME', declared: 'name', caseOnly: true }, 'declared in an allOf branch');
  t.same(
    find({ extra: { k: { CODE: 1 } } }),
    { pointer: '/body/extra/k/CODE', declared: 'code', caseOnly: true },
    "a map's values have declared names",
  );
  t.same(find({ tree: { id: 'a', children: [{ id: 'b', children: [{ ID: 'c' }] }] } }), {
    pointer: '/body/tree/children/0/children/0/ID',
    declared: 'id',
    caseOnly: true,
  });
  t.same(find({ pair: [{ LEFT: 1 }, {}] }), { pointer: '/body/pair/0/LEFT', declared: 'left', caseOnly: true });
  t.same(find({ pair: [{}, { Right: 1 }] }), { pointer: '/body/pair/1/Right', declared: 'right', caseOnly: true });
  t.equal(find({ pair: [{ right: 1 }, { left: 1 }] }), undefined, 'each item its own names');
  t.same(find({ 'a/b': { x: 1 }, labels: {}, NAME: 1 }), { pointer: '/body/NAME', declared: 'name', caseOnly: true });
  t.equal(find([1, 'x', null]), undefined, 'not an object');
  t.equal(new CaseVariantFinder(true).find({ NAME: 1 }, ''), undefined, 'a boolean schema declares nothing');
});

t.test("CaseVariantFinder: separators too, as pydantic's populate_by_name binds is_admin to isAdmin", async (t) => {
  const names = declaredNames(['isAdmin', 'account_tier']);
  if (!names) throw new Error('names');
  for (const name of ['is_admin', 'IS_ADMIN', 'is-admin', 'Is_Admin', 'isadmin']) t.equal(caseVariantOf(name, names), 'isAdmin', name);
  for (const name of ['accountTier', 'AccountTier', 'account-tier', 'ACCOUNT_TIER'])
    t.equal(caseVariantOf(name, names), 'account_tier', name);
  t.equal(caseVariantOf('is_admin_x', names), undefined, 'unrelated');
  const finder = new CaseVariantFinder({
    type: 'object',
    properties: {
      isAdmin: { readOnly: true },
      tags: { type: 'object', additionalProperties: { type: 'string' } },
      nested: { type: 'object', properties: { userId: {} } },
    },
  });
  t.same(finder.find({ is_admin: true }, '/body'), { pointer: '/body/is_admin', declared: 'isAdmin', caseOnly: false });
  t.same(finder.find({ IsAdmin: true }, '/body'), { pointer: '/body/IsAdmin', declared: 'isAdmin', caseOnly: true });
  t.same(finder.find({ nested: { user_id: 1 } }, '/body'), { pointer: '/body/nested/user_id', declared: 'userId', caseOnly: false });
  t.equal(finder.find({ tags: { is_admin: 'x', 'Is-Admin': 'y' } }, '/body'), undefined, "a map's keys are the client's");
  const both = new CaseVariantFinder({ type: 'object', properties: { is_admin: {}, isAdmin: {} } });
  t.equal(both.find({ is_admin: 1, isAdmin: 2 }, ''), undefined, 'both declared: neither is a variant');
  t.ok(both.find({ 'is-admin': 1 }, ''), 'an undeclared third spelling still is');
});

t.test('CaseVariantFinder: a recursive member declared in two allOf branches (places built per document)', async (t) => {
  const node: Record<string, unknown> = { type: 'object', properties: { id: {} } };
  node.allOf = [{ properties: { child: node } }, { properties: { child: { type: 'object' } } }];
  const finder = new CaseVariantFinder(node);
  let doc: Record<string, unknown> = { ID: 1 };
  for (let i = 0; i < 200; i++) doc = { id: i, child: doc };
  t.same(finder.find(doc, ''), { pointer: `${'/child'.repeat(200)}/ID`, declared: 'id', caseOnly: true });
  t.equal(finder.find({ id: 1, child: { id: 2, child: { id: 3 } } }, ''), undefined);
});

/**
 * Components used twice per level (A_i = {l: A_{i-1}, r: A_{i-1}}), as dereferencing leaves them:
 * one object reached 2^depth ways. ajv compiled it once per way — a 2 KB document of 16 levels took
 * `config check` 65 s, and at 15 the validator overflowed the stack on every call (docs/adversarial.md
 * defect 117). Each shared schema is now a definition, compiled once.
 */
function sharedLevels(depth: number): Record<string, unknown> {
  let a: Record<string, unknown> = { type: 'string', maxLength: 5 };
  for (let i = 1; i <= depth; i++) a = { type: 'object', properties: { l: a, r: a } };
  return a;
}

/** A value down one side of the levels: `{l: {l: … leaf}}`, `depth` deep. */
function downTheLeft(depth: number, leaf: unknown, side = 'l'): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = { [side]: v };
  return v;
}

/** `POST /t` taking a JSON body of `schema`. */
function postOperation(schema: Record<string, unknown>, dialect: '3.0' | '3.1') {
  return testOperation({
    id: 'post',
    paths: ['/t'],
    pointer: '#/paths/~1t/post',
    requestBody: { content: { 'application/json': { schema } } },
    dialect,
  });
}

t.test('acyclicSchema: 20 levels of a component used twice compile once, and validate at depth', async (t) => {
  const schema = sharedLevels(20);
  const op = postOperation(schema, '3.1');
  const v = compileRequestValidator(op, { unknownQuery: 'allow' });
  const body = (value: unknown) => v.body('application/json', { body: Buffer.from(JSON.stringify(value)) });
  t.equal(body(downTheLeft(20, 'abc')), undefined, 'a valid value 20 levels deep');
  t.equal(body(downTheLeft(20, 'abc', 'r')), undefined, 'down the other side');
  t.match(
    body(downTheLeft(20, 'toolong')),
    { pointer: `/body${'/l'.repeat(20)}`, message: /must NOT have more than 5/ },
    'the leaf at depth 20',
  );
  t.match(body(downTheLeft(7, 5)), { pointer: `/body${'/l'.repeat(7)}`, message: 'must be object' }, 'a level in the middle');
  t.match(
    body(downTheLeft(19, { L: 'x' })),
    { pointer: `/body${'/l'.repeat(19)}/L`, message: /only in letter case/ },
    'a case variant at depth 20',
  );
  t.equal(compileNumberSpellings(schema), undefined, 'the number-spelling walk over the levels finds no number');
  const copy = acyclicSchema(schema) as { definitions?: Record<string, unknown> };
  t.equal(Object.keys(copy.definitions ?? {}).length, 19, 'one definition per shared level (the leaf stays where it is)');
});

t.test('acyclicSchema: a schema of more distinct subschemas than MAX_SUBSCHEMAS is refused, naming its place', async (t) => {
  const huge = {
    type: 'object',
    properties: Object.fromEntries(Array.from({ length: MAX_SUBSCHEMAS }, (_, i) => [`p${i}`, { type: 'string' }])),
  };
  t.throws(() => acyclicSchema(huge), SchemaTooLarge);
  const op = postOperation(huge, '3.0');
  const err = t.throws(() => compileRequestValidator(op, { unknownQuery: 'allow' })) as OpenApiError;
  t.type(err, OpenApiError);
  t.equal(err.pointer, '#/paths/~1t/post/requestBody/content/application~1json/schema');
  t.match(err.message, /more than 10000 distinct subschemas/);
});

/**
 * Every subschema that applies to the same instance declares names for it (red team 29, F1): Go's
 * encoding/json binds `ROLE` to the struct's `Role` whichever branch of the schema names it, so
 * `{"kind":"a","ROLE":"admin"}` passed `then: {properties: {role: {enum: [user]}}}` as an
 * undeclared member of an open object.
 */
t.test('CaseVariantFinder: names declared in each in-place applicator, and in required lists', async (t) => {
  const role = { properties: { role: { enum: ['user'] } } };
  const cases: [string, Record<string, unknown>][] = [
    ['if', { type: 'object', if: role, then: {} }],
    ['then', { type: 'object', if: { properties: { kind: { const: 'a' } } }, then: role }],
    ['else', { type: 'object', if: { properties: { kind: { const: 'a' } } }, else: role }],
    ['dependentSchemas', { type: 'object', dependentSchemas: { kind: role } }],
    ['dependencies (a schema)', { type: 'object', dependencies: { kind: role } }],
    ['not: properties', { type: 'object', not: role }],
    ['not: required', { type: 'object', not: { required: ['role'] } }],
    ['required', { type: 'object', required: ['role'] }],
    ['dependentRequired: a key', { type: 'object', dependentRequired: { role: ['kind'] } }],
    ['dependentRequired: a value', { type: 'object', dependentRequired: { kind: ['role'] } }],
    ['dependencies (names)', { type: 'object', dependencies: { kind: ['role'] } }],
    ['nested: not in then in an allOf branch', { allOf: [{ then: { not: role } }] }],
    ['a shared ($ref) schema under else', { else: { allOf: [role, role] } }],
  ];
  for (const [label, schema] of cases) {
    const finder = new CaseVariantFinder(schema);
    t.same(finder.find({ kind: 'a', ROLE: 'admin' }, '/body'), { pointer: '/body/ROLE', declared: 'role', caseOnly: true }, label);
    t.equal(finder.find({ kind: 'a', role: 'user' }, '/body'), undefined, `${label}: the declared spelling passes`);
    t.same(topLevelNames(schema).includes('role'), true, `${label}: a top-level name (the shadow checks)`);
  }
  // Deeper: a member's value whose names are declared in a branch, and items under contains.
  const member = new CaseVariantFinder({
    type: 'object',
    properties: { user: { type: 'object' } },
    then: { properties: { user: { dependentSchemas: { id: role } } } },
  });
  t.same(
    member.find({ user: { id: 1, Role: 'admin' } }, ''),
    { pointer: '/user/Role', declared: 'role', caseOnly: true },
    'a member declared in then',
  );
  const contains = new CaseVariantFinder({ type: 'array', items: { type: 'object' }, contains: role });
  t.same(contains.find([{}, { ROLE: 'admin' }], ''), { pointer: '/1/ROLE', declared: 'role', caseOnly: true }, 'contains: every item');
  const unevaluatedItems = new CaseVariantFinder({ type: 'array', unevaluatedItems: role });
  t.same(unevaluatedItems.find([{ ROLE: 'admin' }], ''), { pointer: '/0/ROLE', declared: 'role', caseOnly: true }, 'unevaluatedItems');
  const unevaluated = new CaseVariantFinder({
    type: 'object',
    properties: { kind: {} },
    unevaluatedProperties: { type: 'object', ...role },
  });
  t.same(
    unevaluated.find({ other: { ROLE: 'admin' } }, ''),
    { pointer: '/other/ROLE', declared: 'role', caseOnly: true },
    "unevaluatedProperties: an undeclared member's value",
  );
  t.equal(unevaluated.find({ other: { role: 'user' }, labels: { KIND: 1 } }, ''), undefined, "its keys are the client's (a map)");
  // A name required but given no schema of its own: its value is additionalProperties', as ajv reads it.
  const required = new CaseVariantFinder({ type: 'object', required: ['meta'], additionalProperties: { type: 'object', ...role } });
  t.same(
    required.find({ meta: { ROLE: 'admin' } }, ''),
    { pointer: '/meta/ROLE', declared: 'role', caseOnly: true },
    "a required-only name's value",
  );
  // propertyNames constrains names, it declares none: its enum already refuses another spelling.
  t.equal(new CaseVariantFinder({ type: 'object', propertyNames: { maxLength: 9 } }).find({ ROLE: 1 }, ''), undefined);
  // Bounded on a schema that contains itself through each keyword.
  const loop: Record<string, unknown> = { type: 'object', properties: { id: {} } };
  Object.assign(loop, { if: loop, then: loop, else: loop, not: loop, dependentSchemas: { id: loop }, allOf: [loop] });
  t.same(
    new CaseVariantFinder(loop).find({ ID: 1 }, ''),
    { pointer: '/ID', declared: 'id', caseOnly: true },
    'a cycle through every keyword',
  );
});

/**
 * A schema whose `properties` object counts how often its names are read: once per place built
 * over it (namesOf), whatever else the walk does with it.
 */
function countedNames(count: number): { schema: Record<string, unknown>; reads: () => number } {
  let reads = 0;
  const names = Object.fromEntries(Array.from({ length: count }, (_, i) => [`option_name_${i}`, { type: 'string' }]));
  const properties = new Proxy(names, {
    ownKeys: (target) => {
      reads++;
      return Reflect.ownKeys(target);
    },
  });
  return { schema: { type: 'object', properties }, reads: () => reads };
}

/**
 * A member declared in two schemas (`config` in `properties` and in an if/then's `then`) has a place
 * of both. It was built afresh wherever it was reached and kept none of its members' places, so each
 * of 10 000 array items rebuilt `options`' place over its 150 names: a 1 MiB batch held the event
 * loop 3.8 s (review 2, F1). A place of several schemas is now built once per finder, like one of a
 * single schema.
 */
t.test('CaseVariantFinder: a place of several schemas is built once, not once per array item', async (t) => {
  const items = (n: number) =>
    Array.from({ length: n }, () => ({ kind: 'basic', config: { label: 'x', options: { option_name_1: 'a' } } }));
  const thenOptions = { type: 'object', properties: { extra: { type: 'string' } } };
  {
    const options = countedNames(150);
    const item = {
      type: 'object',
      properties: {
        kind: { type: 'string' },
        config: { type: 'object', properties: { options: options.schema, label: { type: 'string' } } },
      },
      if: { properties: { kind: { const: 'advanced' } } },
      then: { properties: { config: { type: 'object', properties: { options: thenOptions } } } },
    };
    const finder = new CaseVariantFinder({ type: 'object', properties: { items: { type: 'array', items: item } } });
    t.equal(finder.find({ items: items(10_000) }, '/body'), undefined, 'if/then: no variant');
    t.equal(options.reads(), 1, "if/then: options' place built once for 10 000 items");
    t.same(
      finder.find({ items: [...items(3), { kind: 'advanced', config: { options: { EXTRA: 1 } } }] }, '/body'),
      { pointer: '/body/items/3/config/options/EXTRA', declared: 'extra', caseOnly: true },
      "if/then: then's name still found under the shared place",
    );
    t.same(
      finder.find({ items: [{ config: { options: { OPTION_NAME_7: 1 } } }] }, '/body'),
      { pointer: '/body/items/0/config/options/OPTION_NAME_7', declared: 'option_name_7', caseOnly: true },
      "if/then: properties' name too",
    );
    t.equal(options.reads(), 1, 'if/then: and not rebuilt by a later document');
  }
  {
    // item() merges contains (and unevaluatedItems, additionalItems) with items: places of two schemas down to options.
    const options = countedNames(150);
    const item = {
      type: 'object',
      properties: { kind: {}, config: { type: 'object', properties: { options: options.schema, label: {} } } },
    };
    const finder = new CaseVariantFinder({
      type: 'object',
      properties: {
        items: {
          type: 'array',
          items: item,
          contains: { properties: { config: { properties: { options: { required: ['option_name_1'] } } } } },
        },
      },
    });
    t.equal(finder.find({ items: items(10_000) }, '/body'), undefined, 'contains: no variant');
    t.equal(options.reads(), 1, "contains: options' place built once for 10 000 items");
  }
});

t.test('CaseVariantFinder: places of several schemas kept per finder are bounded, and the walk past the bound is unchanged', async (t) => {
  // 1 100 members declared in properties and in then, each with a member `q` declared in both too:
  // 2 200 places of two schemas, more than a finder keeps. Every `q` has the same counted names.
  const names = countedNames(3);
  const count = 1_100;
  const schema = {
    type: 'object',
    properties: Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${i}`, { type: 'object', properties: { q: names.schema } }])),
    if: { required: ['kind'] },
    then: { properties: Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${i}`, { properties: { q: {} } }])) },
  };
  const finder = new CaseVariantFinder(schema);
  const doc = Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${i}`, { q: { option_name_1: 1 } }]));
  t.equal(finder.find(doc, ''), undefined);
  t.equal(names.reads(), count, 'each q place built once');
  t.equal(finder.find(doc, ''), undefined);
  const again = names.reads() - count;
  t.ok(again > 0 && again < count, `past the bound some are built again for each document, not kept (${again} of ${count})`);
  t.same(
    finder.find({ ...doc, p1099: { q: { OPTION_NAME_2: 1 } } }, ''),
    { pointer: '/p1099/q/OPTION_NAME_2', declared: 'option_name_2', caseOnly: true },
    'a variant under a place not kept',
  );
  t.same(
    finder.find({ ...doc, p0: { q: { Option_Name_0: 1 } } }, ''),
    { pointer: '/p0/q/Option_Name_0', declared: 'option_name_0', caseOnly: true },
    'and under one kept',
  );
});
