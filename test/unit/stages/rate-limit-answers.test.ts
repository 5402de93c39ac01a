/**
 * RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers) counts whole seconds: a bucket whose
 * `per` is not one states the refill over `per` rounded up. Before, `q` was the rate beside a
 * rounded `w`: 10 per 100 ms said 10 a second (ten times stricter than the limit).
 */
import t from 'tap';
import { rateLimitAnswersOf } from '../../../src/stages/rate-limit.js';
import { bucketOf } from '../../../src/traffic/gcra.js';

const policyOf = (rate: number, per: number, burst?: number) => rateLimitAnswersOf('r', bucketOf({ rate, per, burst })).policy;

t.test('q is what refills in w, w is per rounded up to whole seconds', async (t) => {
  t.equal(policyOf(10, 100), '"r";q=100;w=1', '10 per 100 ms: 100 a second');
  t.equal(policyOf(3, 1500), '"r";q=4;w=2', '3 per 1.5 s: 4 in 2 s');
  t.equal(policyOf(5, 3_600_000), '"r";q=5;w=3600', 'whole seconds as they are');
  t.equal(policyOf(1, 60_000, 50), '"r";q=1;w=60', 'burst is not stated (the draft has no parameter for it)');
  t.equal(policyOf(7, 250), '"r";q=28;w=1');
});
