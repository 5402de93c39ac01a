/**
 * The per-name memo of the undeclared-cookie check: a name's verdict is computed once and then
 * kept, within a bound (names and their count), and a validator gives the same verdict on every
 * request whatever names came between.
 */
import t from 'tap';
import { memoizedByName } from '../../../src/openapi/name-verdicts.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import { testOperation } from '../../support/operation.js';

t.test('a verdict is computed once per name, within the bounds', async (t) => {
  const asked: string[] = [];
  const check = memoizedByName((name) => (asked.push(name), name.startsWith('bad') ? { refused: name } : undefined));
  t.same(check('bad1'), { refused: 'bad1' });
  t.same(check('bad1'), { refused: 'bad1' }, 'the kept verdict');
  t.equal(check('ok'), undefined);
  t.equal(check('ok'), undefined, 'a kept "nothing to say"');
  t.same(asked, ['bad1', 'ok'], 'each name checked once');
  const long = `bad${'x'.repeat(80)}`;
  check(long);
  check(long);
  t.equal(asked.filter((n) => n === long).length, 2, 'a long name is checked each time, not kept');
  for (let i = 0; i < 64; i++) check(`n${i}`);
  asked.length = 0;
  t.same(check('bad1'), { refused: 'bad1' }, 'past the bound the memo starts again');
  t.same(asked, ['bad1'], 'so the name is checked again');
});

t.test("a validator's cookie verdicts hold on every request", async (t) => {
  const op = testOperation({
    method: 'GET',
    paths: ['/items/{id}'],
    parameters: [
      { name: 'id', in: 'path', required: true, schema: { type: 'integer' } },
      { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 100 } },
      { name: 'session', in: 'cookie', schema: { type: 'string' } },
    ],
  });
  const v = compileRequestValidator(op, { unknownQuery: 'refuse' });
  const ask = (cookie: string) => v.params({ params: { id: '1' }, search: '?limit=5', headers: { cookie } });
  for (let round = 0; round < 3; round++) {
    t.match(ask('limit=1000'), { pointer: '/cookie/limit' }, `round ${round}: a cookie read as the query parameter`);
    t.match(ask('SESSION=x'), { pointer: '/cookie/SESSION' }, `round ${round}: a cookie read as the declared one`);
    t.equal(ask('theme=dark; session=abc'), undefined, `round ${round}: ordinary cookies pass`);
    for (let i = 0; i < 100; i++) ask(`c${round}_${i}=1`);
  }
});
