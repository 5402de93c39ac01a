import t from 'tap';
import { createRefusalMemo } from '../../../src/traffic/refusal-memo.js';

t.test('a refusal holds until its retry time, then is forgotten', async (t) => {
  const memo = createRefusalMemo(10);
  t.equal(memo.get('a', 0), undefined, 'nothing refused');
  memo.remember('a', { retryAt: 100, resetAt: 200 });
  t.same(memo.get('a', 99), { retryAt: 100, resetAt: 200 });
  t.equal(memo.get('b', 99), undefined, 'other keys are not refused');
  t.equal(memo.get('a', 100), undefined, 'at the retry time the bucket has a token again');
  t.equal(memo.size, 0, 'and the expired refusal is gone');
});

t.test('bounded: past maxKeys the refusal remembered longest ago goes', async (t) => {
  const memo = createRefusalMemo(3);
  for (const k of ['a', 'b', 'c', 'd']) memo.remember(k, { retryAt: 1000, resetAt: 1000 });
  t.equal(memo.size, 3);
  t.equal(memo.get('a', 0), undefined, 'the oldest went');
  memo.remember('b', { retryAt: 1000, resetAt: 1000 }); // remembered again: now the newest
  memo.remember('e', { retryAt: 1000, resetAt: 1000 });
  t.ok(memo.get('b', 0), 'refreshed, kept');
  t.equal(memo.get('c', 0), undefined, 'the oldest now went');
});
