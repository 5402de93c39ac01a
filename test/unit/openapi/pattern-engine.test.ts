/**
 * Schema patterns run on caller input in linear time (docs/adversarial.md defect 115): a pattern
 * JavaScript's backtracking RegExp takes exponential time on gets its verdict at once from RE2,
 * a pattern RE2 cannot run is refused at load naming its place, and the patterns V8 runs in linear
 * time keep V8. No timing is asserted: before the fix, the hostile value below held the process
 * for far longer than tap's file timeout (a 32-byte one held it 10–12 s).
 */
import t from 'tap';
import { OpenApiError } from '../../../src/openapi/document.js';
import type { Operation, ParameterObject } from '../../../src/openapi/operations.js';
import { isBacktrackLinear } from '../../../src/openapi/backtrack-linear.js';
import { createPatternEngine, patternProblem } from '../../../src/openapi/pattern-engine.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';

/** A title TAP can carry (a U+2028 in it ends the line). */
const escaped = (s: string) => s.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

const CATASTROPHIC = '^([a-zA-Z0-9]+\\s?)*$';

const operation = (parameters: ParameterObject[], body?: Record<string, unknown>): Operation =>
  testOperation({
    id: 'findUsers',
    method: 'GET',
    paths: ['/users'],
    pointer: '#/paths/~1users/get',
    parameters,
    requestBody: body && { content: { 'application/json': { schema: body } } },
  });

const nameQuery = (pattern: string): ParameterObject => ({ name: 'name', in: 'query', schema: { type: 'string', maxLength: 40, pattern } });

t.test('a catastrophic pattern gets its verdict on a hostile value (RE2)', async (t) => {
  const v = compileRequestValidator(operation([nameQuery(CATASTROPHIC)]), { unknownQuery: 'allow' });
  const params = (search: string) => v.params({ params: {}, search, headers: {} });
  t.equal(params('?name=Alice%20Smith'), undefined, 'a valid value passes');
  t.match(
    params(`?name=${'a'.repeat(39)}!`),
    { pointer: '/query/name', message: /must match pattern/ },
    '39 letters and a "!" are refused',
  );
  const body = compileRequestValidator(operation([], { type: 'object', properties: { q: { type: 'string', pattern: CATASTROPHIC } } }), {
    unknownQuery: 'allow',
  });
  const hostile = JSON.stringify({ q: `${'a'.repeat(100_000)}!` });
  t.match(body.body('application/json', { body: Buffer.from(hostile) }), { pointer: '/body/q' }, 'in a body, 100 000 letters');
});

t.test('a pattern RE2 cannot run is refused at load, naming the operation and the parameter', async (t) => {
  for (const pattern of ['^(?=.*[0-9])[a-z0-9]+$', '^(a)\\1$', '(?<!x)y']) {
    const err = t.throws(() => compileRequestValidator(operation([nameQuery(pattern)]), { unknownQuery: 'allow' })) as OpenApiError;
    t.type(err, OpenApiError, pattern);
    t.equal(err.pointer, '#/paths/~1users/get');
    t.match(err.message, /^parameter "name" in query: schema\/pattern ".*" cannot run on a linear-time engine \(RE2: .*\); lookahead/);
  }
  const inBody = operation([], { type: 'object', properties: { code: { type: 'string', pattern: '^(?!admin).*$' } } });
  const err = t.throws(() => compileRequestValidator(inBody, { unknownQuery: 'allow' })) as OpenApiError;
  t.equal(err.pointer, '#/paths/~1users/get/requestBody/content/application~1json/schema/properties/code/pattern');
  const keys = operation([], { type: 'object', patternProperties: { '^(?=x)': { type: 'string' } } });
  t.match(
    (t.throws(() => compileRequestValidator(keys, { unknownQuery: 'allow' })) as OpenApiError).pointer,
    /patternProperties\/\^\(\?=x\)$/,
  );
  t.match(patternProblem('['), /is not a regular expression/);
});

t.test('patterns V8 runs in linear time keep V8; the others are RE2 with JavaScript meanings', async (t) => {
  for (const p of ['^[A-Z0-9-]{3,20}$', '^\\d{4}-\\d{2}-\\d{2}$', '^\\+?[1-9]\\d{1,14}$', '^[a-z]+$', '^[^\\s]+$', '^[a-z]*\\.[a-z]+$'])
    t.ok(isBacktrackLinear(p), `${p}: V8`);
  for (const p of [CATASTROPHIC, '[a-z]+$', '^a*a$', '^a?b?a$', '^(ab)+$', '^[a-z.]+\\.[a-z]+$', '^\\w+?x$', '^a|b$'])
    t.notOk(isBacktrackLinear(p), `${p}: RE2`);
  const engine = createPatternEngine();
  const samples = ['a b', 'a\u00a0b', 'a\u2028b', 'a\rb', 'a\tb', 'ab', ' ', ''];
  for (const p of ['^(\\S+\\s?)*$', '^(.)+$', '^([^\\s]|x)+$', '^(\\s|a)*b$']) {
    t.notOk(isBacktrackLinear(p), `${p} is RE2's`);
    const re2 = engine(p, 'u');
    const js = new RegExp(p, 'u');
    for (const s of samples) t.equal(re2.test(s), js.test(s), `${p} on ${escaped(s)}`);
  }
  t.equal(engine('^(a+)+$', 'u'), engine('^(a+)+$', 'u'), 'a pattern used again is compiled once');
});
