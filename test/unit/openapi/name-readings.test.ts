import t from 'tap';
import { compileNameReadings, isMethodOverrideName, isMultipartMethodOverrideName } from '../../../src/openapi/name-readings.js';

const names = compileNameReadings([
  { name: 'limit', in: 'query', schema: { type: 'integer' } },
  { name: 'page_size', in: 'query', schema: { type: 'integer' } },
  { name: 'filter', in: 'query', style: 'deepObject', explode: true, schema: { type: 'object', properties: { color: {} } } },
  { name: 'page', in: 'query', schema: { type: 'object', properties: { offset: {}, size: {} } } },
  { name: 'range', in: 'query', explode: false, schema: { type: 'object', properties: { from: {} } } },
  { name: 'tags[]', in: 'query', schema: { type: 'array' } },
]);

t.test('the keys an operation owns', async (t) => {
  for (const key of ['limit', 'page_size', 'filter[color]', 'filter[other]', 'offset', 'size', 'range', 'tags[]'])
    t.ok(names.owns(key), key);
  for (const key of ['limit[]', 'filter', 'filter[x', 'from', 'LIMIT', 'page', 'tags']) t.notOk(names.owns(key), key);
  // qs and Rails read these as an array or an object under `color`, which its schema never saw (defect 168).
  for (const key of ['filter[]', 'filter[color][]', 'filter[color][x]', 'filter[[color]', 'filter[color]]', '[filter][color]'])
    t.notOk(names.owns(key), key);
});

t.test('keys a backend reads as a declared name', async (t) => {
  t.same(names.readAs('LIMIT'), { declared: 'limit', caseOnly: true });
  t.same(names.readAs('Offset'), { declared: 'offset', caseOnly: true }, 'an exploded property');
  for (const key of [
    'limit[]',
    'limit[0]',
    'limit[x][y]',
    'LIMIT[]',
    ' limit[]',
    'page.size',
    'page size',
    'PAGE.SIZE',
    'tags',
    'filter[color',
    'range[]',
  ])
    t.ok(names.readAs(key) !== undefined && names.readAs(key)?.caseOnly === false, key);
  t.same(names.readAs('page.size'), { declared: 'page_size', caseOnly: false });
  t.same(names.readAs('tags'), { declared: 'tags[]', caseOnly: false }, 'PHP reads tags[] as tags');
  t.same(names.readAs('filter'), { declared: 'filter', caseOnly: false }, 'a deepObject parameter is never sent bare');
  t.same(names.readAs('page'), { declared: 'page', caseOnly: false }, 'nor an exploded object parameter');
  for (const key of ['other', 'other[]', '[other]', 'limits', 'x_limit', 'from', '[]', '[x]limit'])
    t.equal(names.readAs(key), undefined, key);
});

t.test('brackets before a name: qs drops an empty parent ([limit] is limit), Rack 2 strips leading [ and ] (defect 168)', async (t) => {
  for (const key of [
    '[limit]',
    '[limit',
    ']limit',
    'limit]',
    '[[limit]]',
    '[LIMIT]',
    '%5Blimit%5D'.replace(/%5B/g, '[').replace(/%5D/g, ']'),
  ])
    t.same(names.readAs(key), { declared: 'limit', caseOnly: false }, key);
  t.same(names.readAs('[filter][color]'), { declared: 'filter', caseOnly: false });
  t.same(names.readAs('filter[color][]'), { declared: 'filter', caseOnly: false }, 'a deepObject entry with more brackets');
  t.same(names.readAs('[page.size]'), { declared: 'page_size', caseOnly: false });
});

t.test('a name cut at its first NUL, as PHP reads it (php_register_variable_ex measures it with strlen)', async (t) => {
  t.same(names.readAs('limit\0'), { declared: 'limit', caseOnly: false });
  t.same(names.readAs('limit\0x'), { declared: 'limit', caseOnly: false });
  t.same(names.readAs('page.size\0'), { declared: 'page_size', caseOnly: false });
  t.same(names.readAs('tags\0[]'), { declared: 'tags[]', caseOnly: false });
  t.equal(names.readAs('x\0limit'), undefined, 'only what comes before the NUL is the name');
  t.notOk(names.owns('limit\0'), 'not the declared key itself');
});

t.test("a name with System.Web's %uXXXX escape, as ASP.NET on .NET Framework reads it", async (t) => {
  t.same(names.readAs('%u006cimit'), { declared: 'limit', caseOnly: false });
  t.same(names.readAs('%U006CIMIT'), { declared: 'limit', caseOnly: false }, 'either case, of the escape and of the name');
  t.same(names.readAs('page%u002esize'), { declared: 'page_size', caseOnly: false }, 'then read as PHP reads it');
  t.equal(names.readAs('%u006cimits'), undefined, 'another name once decoded');
  t.equal(names.readAs('%u006'), undefined, 'an escape needs its four digits');
  t.notOk(names.owns('%u006cimit'), 'not the declared key itself');
});

t.test('PHP reads a key whose [ is never closed as one name, [ . and space as _ (php_register_variable_ex)', async (t) => {
  const query = compileNameReadings([
    { name: 'page_size', in: 'query', schema: { type: 'integer' } },
    { name: 'limit', in: 'query', schema: { type: 'integer' } },
  ]);
  for (const key of ['page[size', 'page.size[', 'PAGE[SIZE', ' page[size', 'page%u005bsize', 'page[size\0]'])
    t.same(query.readAs(key), { declared: 'page_size', caseOnly: false }, key);
  t.same(query.readAs('limit[x'), { declared: 'limit', caseOnly: false }, 'the name before the bracket is still read (Rack)');
  t.equal(query.readAs('page[size]'), undefined, 'a closed bracket is an index of page');
  t.equal(query.readAs('page[size]x[y'), undefined, 'closed after the first [');
  t.equal(query.readAs('page[size.'), undefined, 'page_size_ to PHP');
  t.equal(query.readAs('page[siz'), undefined, 'another name');
  t.same(names.readAs('page[size'), { declared: 'page', caseOnly: false }, 'refused either way when both readings are declared');
});

t.test('body fields (separators): names alike but for _ and -, as pydantic populate_by_name binds them', async (t) => {
  const fields = compileNameReadings(
    ['isAdmin', 'account_tier', 'user_role'].map((name) => ({ name, in: 'query' as const })),
    { separators: true },
  );
  for (const key of ['is_admin', 'IS-ADMIN', 'is[admin', 'is.admin'])
    t.same(fields.readAs(key), { declared: 'isAdmin', caseOnly: false, separators: true }, key);
  t.same(fields.readAs('ISADMIN'), { declared: 'isAdmin', caseOnly: true }, 'letter case alone');
  t.same(fields.readAs('accountTier'), { declared: 'account_tier', caseOnly: false, separators: true });
  t.same(fields.readAs('user.role'), { declared: 'user_role', caseOnly: false }, "PHP's reading first");
  t.same(fields.readAs('user[role'), { declared: 'user_role', caseOnly: false });
  t.equal(fields.readAs('isAdmins'), undefined);
  t.equal(names.readAs('pagesize'), undefined, 'query keys: letter case and syntax only');
  const both = compileNameReadings(
    ['is_admin', 'isAdmin'].map((name) => ({ name, in: 'query' as const })),
    { separators: true },
  );
  t.ok(both.owns('is_admin') && both.owns('isAdmin'), 'both declared: each is its own');
});

t.test('only separators between letters or digits are folded: _token, _method, _charset_, _id are their own names', async (t) => {
  const readings = compileNameReadings(
    ['token', 'method', 'charset', 'id', 'links', 'isAdmin'].map((name) => ({ name, in: 'query' as const, schema: { type: 'string' } })),
    { separators: true },
  );
  for (const name of ['_token', '_method', '_charset_', '_id', '__proto__', '_links', 'id_', 'token-'])
    t.equal(readings.readAs(name), undefined, `${name} is not read as a declared name`);
  t.match(readings.readAs('is_admin'), { declared: 'isAdmin', separators: true }, 'is_admin still is isAdmin');
});

t.test("multipart fields (stripped): white space around a name, as Django's MultiPartParser strips it (round 22e)", async (t) => {
  const declared = ['role', 'is_admin'].map((name) => ({ name, in: 'query' as const }));
  const multipart = compileNameReadings(declared, { separators: true, stripped: true });
  // Python's bytes.strip(): space, tab, LF, VT, FF, CR.
  for (const key of ['role ', 'role\t', '  role  ', 'role\v', 'role\f', 'role\r\n', ' is_admin '])
    t.same(multipart.readAs(key), { declared: key.trim(), caseOnly: false, stripped: true }, JSON.stringify(key));
  t.same(multipart.readAs(' role'), { declared: 'role', caseOnly: false }, "PHP's reading (leading spaces trimmed) first");
  for (const key of ['role\u00a0', 'role\u3000', 'ROLE ', 'roles ', ' ', ''])
    t.equal(multipart.readAs(key), undefined, `${JSON.stringify(key)}: not white space Django strips, or another name`);
  t.notOk(multipart.owns('role '), 'not the declared name itself');
  const form = compileNameReadings(declared, { separators: true });
  t.equal(form.readAs('role '), undefined, "form fields: Django's QueryDict keeps the space (as Werkzeug does)");
  t.equal(form.readAs('role\t'), undefined);
});

t.test('a multipart _method with white space around it is a _method to Django (round 22e)', async (t) => {
  for (const key of ['_method ', '_method\t', '  _method  ', '\t_method']) t.ok(isMultipartMethodOverrideName(key), JSON.stringify(key));
  t.ok(isMultipartMethodOverrideName('_method[]'), 'and still as PHP, qs and Rails read it');
  t.notOk(isMultipartMethodOverrideName('_method_'), 'another name');
  t.notOk(isMethodOverrideName('_method\t'), 'in a query or a form, no reader strips it');
});

/**
 * qs with `allowDots` (co-body's default: koa-bodyparser, koa-body; restify's queryParser and
 * koa-qs as an option) rewrites each `.name` to `[name]` (red team 26B). What qs 6.17.1 read each
 * key as, run by hand: `qs.parse(key + '=v', {allowDots: true})`.
 */
const QS_DOTS: [key: string, qsReads: string][] = [
  ['.role', '{"role":"v"}'],
  ['role.0', '{"role":["v"]}'],
  ['.role]', '{"role":"v"}'],
  ['role.]', '{"role":["v"]}'],
  ['.role..', '{"role":"v"}'],
  ['.ROLE', '{"ROLE":"v"}'],
  ['.role.x', '{"role":{"x":"v"}}'],
  ['.role[x]', '{"role":{"x":"v"}}'],
  ['.limit', '{"limit":"v"}'],
  ['filter.color', '{"filter":{"color":"v"}}'],
  ['.page.size', '{"page":{"size":"v"}}'],
  ['page.size.x', '{"page":{"size":{"x":"v"}}}'],
  ['page.size.', '{"page":{"size":"v"}}'],
];
/** Keys qs reads as no declared name (nor do PHP, Rails or System.Web): they pass. */
const QS_DOTS_OTHERS: [key: string, qsReads: string][] = [
  ['..role', '{".":{"role":"v"}}'],
  ['role..x', '{"role.":{"x":"v"}}'],
  ['x.role', '{"x":{"role":"v"}}'],
  ['user.email', '{"user":{"email":"v"}}'],
  ['fields.articles', '{"fields":{"articles":"v"}}'],
  ['.x', '{"x":"v"}'],
  ['%u002erole', '{"%u002erole":"v"}'],
  ['page.number', '{"page":{"number":"v"}}'],
  ['page[x]', '{"page":{"x":"v"}}'],
  ['x._method', '{"x":{"_method":"v"}}'],
];

t.test("qs's allowDots reading: `.role`, `role.0`, `filter.color` are declared names (red team 26B)", async (t) => {
  const dotted = compileNameReadings([
    { name: 'role', in: 'query' },
    { name: 'limit', in: 'query' },
    { name: 'filter', in: 'query', style: 'deepObject', explode: true, schema: { type: 'object', properties: { color: {} } } },
    { name: 'page.size', in: 'query' },
  ]);
  for (const [key, reads] of QS_DOTS) {
    const declared = Object.keys(JSON.parse(reads) as object)[0] as string;
    const name = declared === 'page' ? 'page.size' : declared.toLowerCase();
    t.same(dotted.readAs(key), { declared: name, caseOnly: false, dots: true }, `${key}: ${reads} to qs`);
  }
  for (const [key, reads] of QS_DOTS_OTHERS) t.equal(dotted.readAs(key), undefined, `${key}: ${reads} to qs`);
  t.same(
    dotted.readAs('page[size]'),
    { declared: 'page.size', caseOnly: false, dots: true },
    'a declared dotted name: its path with brackets',
  );
  t.same(dotted.readAs('[page][size]'), { declared: 'page.size', caseOnly: false, dots: true });
  t.ok(dotted.owns('page.size') && dotted.owns('filter[color]'), 'the declared spellings are owned');
  t.same(dotted.readAs('page.size'), { declared: 'page.size', caseOnly: false }, 'PHP reads it as page_size');
});

t.test('a _method qs reads with allowDots is an override (koa-override after koa-bodyparser)', async (t) => {
  for (const key of ['._method', '._method[]', '._method]', '._method..', '._METHOD', '._method.x']) t.ok(isMethodOverrideName(key), key);
  for (const key of ['_method.', 'x._method', '..method', '. _method', 'method.x', '%u002e_method'])
    t.notOk(isMethodOverrideName(key), `${key}: another name to qs`);
});

t.test('the allowDots reading is linear on hostile names', async (t) => {
  const dotted = compileNameReadings([
    { name: 'role', in: 'query' },
    { name: 'page.size', in: 'query' },
  ]);
  for (const unit of ['.', '.a', 'a.', '[.', '.[', '.a]', '._method'])
    for (const size of [1 << 14, 1 << 20]) {
      const key = unit.repeat(size / unit.length);
      const started = performance.now();
      dotted.readAs(key);
      isMethodOverrideName(key);
      t.ok(
        performance.now() - started < 50 + size / 250,
        `${JSON.stringify(unit)} × ${size / unit.length}: ${(performance.now() - started).toFixed(1)} ms`,
      );
    }
});
