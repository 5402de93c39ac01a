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
  for (let i = 0; i < 200; i++) check(`n${i}`);
  asked.length = 0;
  t.same(check('bad1'), { refused: 'bad1' }, 'past the bound, the names kept stay kept');
  t.equal(check('ok'), undefined);
  t.same(asked, [], 'not checked again: a client sending many new names does not empty the memo');
  check('n150');
  check('n150');
  t.same(asked, ['n150', 'n150'], 'a name past the bound is checked each time, not kept');
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

t.test('a cookie name read as a declared one once decoded as PHP before 7.4.11 did ("+" a space)', async (t) => {
  const op = testOperation({
    method: 'GET',
    paths: ['/items'],
    parameters: [
      { name: 'session', in: 'cookie', schema: { type: 'string' } },
      { name: 'page_size', in: 'cookie', schema: { type: 'integer', maximum: 100 } },
    ],
  });
  const v = compileRequestValidator(op, { unknownQuery: 'refuse' });
  const ask = (cookie: string) => v.params({ params: {}, search: '', headers: { cookie } });
  // php_url_decode: "+" is a space, which PHP then reads as "_" (or trims, leading).
  t.match(ask('page+size=1000'), { pointer: '/cookie/page+size', message: /read as the cookie "page_size"/ });
  t.match(ask('+session=x'), { pointer: '/cookie/+session', message: /read as the cookie "session"/ });
  t.equal(ask('page+size%2E=1'), undefined, 'page size. is another name');
  t.equal(ask('page%2Bsize=1000'), undefined, 'an escaped "+" is a "+"');
  t.match(ask('Page+Size=1000'), { pointer: '/cookie/Page+Size', message: /read as the cookie "page_size"/ }, 'and letter case');
  t.equal(ask('a+b=1; session=abc; page_size=5'), undefined, 'ordinary cookies pass');
});
