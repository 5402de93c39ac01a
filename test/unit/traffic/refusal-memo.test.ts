import t from 'tap';
import { bucketOf } from '../../../src/traffic/gcra.js';
import { createRefusalMemo, PROBATION_MS, UNRESERVED } from '../../../src/traffic/refusal-memo.js';

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

t.test('reservations: an address that has failed has its calls in flight held to the tokens its bucket has left', async (t) => {
  const memo = createRefusalMemo(10);
  const bucket = bucketOf({ rate: 1, per: 1000, burst: 3 });
  t.same(
    [1, 2, 3, 4, 5].map(() => memo.reserve('a', bucket, 0)),
    Array(5).fill(UNRESERVED),
    'no failure on record: nothing held (valid callers behind one address do not use each other up)',
  );
  t.equal(memo.reserved, 0);
  memo.charged('a', 0, 1000); // one failure: the bucket is full again at 1000
  t.same(
    [1, 2].map(() => memo.reserve('a', bucket, 0)),
    [0, 0],
    'after a failure, two tokens left: two in flight',
  );
  t.equal(memo.reserve('a', bucket, 0), 1000, 'the third waits for a token beyond those held');
  t.equal(memo.reserve('b', bucket, 0), UNRESERVED, 'another address has its own (and has not failed)');
  memo.release('a', 10); // a success: its token is given back
  t.equal(memo.reserve('a', bucket, 10), 0);
  // Three failures charged: the bucket is empty until 3000, full again then.
  for (let i = 0; i < 2; i++) {
    memo.charged('a', 20, 3000);
    memo.release('a', 20);
  }
  t.equal(memo.reserve('a', bucket, 500), 500, 'empty: full at 3000, so its next token comes at 1000');
  t.equal(memo.reserve('a', bucket, 1000), 0, 'one token back: one in flight');
  t.equal(memo.reserve('a', bucket, 1000), 1000, 'not two');
  t.equal(memo.reserved, 1, "a's one");
  memo.release('a', 3000);
  t.same(
    [1, 2, 3, 4].map(() => memo.reserve('a', bucket, 3000)),
    [0, 0, 0, 1000],
    'its bucket full again: held to it for a while (a wave timed to the refill is no first wave)',
  );
  for (let i = 0; i < 3; i++) memo.release('a', 3000);
  t.equal(memo.reserve('a', bucket, 3000 + PROBATION_MS), UNRESERVED, 'full and quiet for PROBATION_MS: the failures are over');
  memo.release('a', 3000);
  memo.release('a', 3000);
  t.equal(memo.reserved, 0, 'a release with nothing reserved gives back nothing (never below 0)');
});
