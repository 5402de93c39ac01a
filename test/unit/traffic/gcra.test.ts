/** GCRA token buckets: burst, refill, cost, remaining and retry times; the memory store's bound. */
import t from 'tap';
import { bucketOf, gcra } from '../../../src/traffic/gcra.js';
import { createMemoryLimiter } from '../../../src/traffic/memory-limiter.js';

t.test('a full bucket allows `burst` requests at once, then refills at `rate` per `per`', async (t) => {
  const b = bucketOf({ rate: 10, per: 1000, burst: 5, cost: 1 });
  let tat = 0;
  const now = 1_000_000;
  const remaining: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = gcra(b, tat, now);
    t.ok(r.decision.allowed, `request ${i + 1} allowed`);
    remaining.push(r.decision.remaining);
    tat = r.tat as number;
  }
  t.same(remaining, [4, 3, 2, 1, 0], 'remaining counts down');
  const refused = gcra(b, tat, now);
  t.notOk(refused.decision.allowed, 'the sixth is refused');
  t.equal(refused.tat, undefined, 'a refusal changes nothing');
  t.equal(Math.round(refused.decision.retryAfterMs), 100, 'one token comes back after 1000/10 ms');
  t.notOk(gcra(b, tat, now + 99).decision.allowed, 'not before');
  t.ok(gcra(b, tat, now + 100).decision.allowed, 'exactly then');
  t.equal(gcra(b, tat, now + 10_000).decision.remaining, 4, 'long after, the bucket is full again (burst - 1 left)');
});

t.test('at epoch-ms clocks, float rounding neither refuses the last of a burst nor hides a token', async (t) => {
  // Before: 419 of these 1 200 buckets admitted burst − 1 at once, and a fresh 6/s bucket said 4 left, not 5.
  const now = Date.parse('2026-12-01T23:00:00.123Z');
  let wrong = 0;
  let cases = 0;
  for (let rate = 1; rate <= 60; rate++)
    for (const per of [1000, 3000, 7000, 60_000])
      for (const burst of [undefined, 3, 7, 10, 13]) {
        const b = bucketOf({ rate, per, burst });
        let tat = 0;
        let admitted = 0;
        let remainingRight = true;
        for (let i = 0; i < b.burst + 5; i++) {
          const r = gcra(b, tat, now);
          if (r.tat === undefined) continue;
          tat = r.tat;
          admitted++;
          if (r.decision.remaining !== b.burst - admitted) remainingRight = false;
        }
        cases++;
        if (admitted !== b.burst || !remainingRight) wrong++;
      }
  t.equal(wrong, 0, `every one of ${cases} buckets admits exactly burst at once, counting down to 0`);
  t.equal(gcra(bucketOf({ rate: 6 }), 0, now).decision.remaining, 5, 'a fresh 6/s bucket: 5 left after one');
});

t.test('cost takes several tokens; burst defaults to rate; per defaults to 1 s', async (t) => {
  const b = bucketOf({ rate: 6 });
  t.equal(b.burst, 6);
  t.equal(b.perMs, 1000);
  const heavy = bucketOf({ rate: 6, cost: 4 });
  const first = gcra(heavy, 0, 0);
  t.ok(first.decision.allowed);
  t.equal(first.decision.remaining, 2);
  t.notOk(gcra(heavy, first.tat as number, 0).decision.allowed, '4 more tokens are not there');
});

t.test('memory limiter: exact under a burst of calls, and bounded in keys', async (t) => {
  let clock = 5_000;
  const limiter = createMemoryLimiter(100, () => clock);
  const b = bucketOf({ rate: 10, per: 3_600_000 });
  const results = Array.from({ length: 50 }, () => limiter.take('k', b) as { allowed: boolean });
  t.equal(results.filter((r) => r.allowed).length, 10, 'exactly 10 of 50');
  for (let i = 0; i < 1000; i++) limiter.take(`flood-${i}`, b);
  t.ok(limiter.size <= 100, `keys bounded (${limiter.size})`);
  clock += 10_000_000;
  limiter.take('after', b);
  t.ok(limiter.size <= 100 - 16, 'keys whose buckets are full again are dropped, several per new key');
});

t.test('a TAT stored under a slower rate is read as an empty bucket of the new one, not as its debt', async (t) => {
  // A reload (or a replica of the old settings sharing Redis) raised the route from 1 an hour to 100 a second.
  const hourly = bucketOf({ rate: 1, per: 3_600_000 });
  const fast = bucketOf({ rate: 100, per: 1000 });
  const now = 5_000_000;
  const stored = gcra(hourly, 0, now).tat as number;
  const refused = gcra(fast, stored, now + 1);
  t.notOk(refused.decision.allowed, 'the bucket is empty under the new rate');
  t.ok(
    refused.decision.retryAfterMs <= fast.interval,
    `and a token comes back within ${fast.interval} ms (${refused.decision.retryAfterMs}), not the hour`,
  );
  t.ok(refused.decision.resetMs <= fast.burstOffset, 'full again within the new burst');
  const kept = refused.tat;
  t.ok(kept !== undefined && kept <= now + 1 + fast.burstOffset, 'the empty bucket is stored, though refused');
  t.ok(gcra(fast, kept ?? stored, now + 1 + fast.interval).decision.allowed, 'allowed one interval later');
  // Unchanged settings: the cap never applies (an allowed TAT is at most burstOffset ahead).
  let tat = 0;
  for (let i = 0; i < 100; i++) tat = gcra(fast, tat, now).tat ?? tat;
  t.notOk(gcra(fast, tat, now).decision.allowed, 'a burst still ends where it did');
});
