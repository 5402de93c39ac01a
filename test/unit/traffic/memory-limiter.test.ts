/**
 * The memory store past `max_keys`: bounded, least recently used evicted, and no new key pays for a
 * sweep of the map. The cost is counted as Map iteration steps, not timed.
 */
import t from 'tap';
import { bucketOf } from '../../../src/traffic/gcra.js';
import { createMemoryLimiter } from '../../../src/traffic/memory-limiter.js';

type IteratorMethod = (this: Map<unknown, unknown>) => Iterator<unknown>;

/** Runs `fn` counting the steps of every Map iterator it uses: the entries a take examines. */
function mapSteps(fn: () => unknown): number {
  const proto = Map.prototype as unknown as Record<PropertyKey, IteratorMethod>;
  const names: PropertyKey[] = ['keys', 'values', 'entries', Symbol.iterator];
  const saved = names.map((n) => proto[n] as IteratorMethod);
  const methods = Map.prototype as unknown as { forEach: Map<unknown, unknown>['forEach'] };
  const savedForEach = methods.forEach;
  let steps = 0;
  names.forEach((n, i) => {
    const original = saved[i] as IteratorMethod;
    proto[n] = function (this: Map<unknown, unknown>) {
      const it = original.call(this);
      return {
        next: () => (steps++, it.next()),
        [Symbol.iterator]() {
          return this;
        },
      } as Iterator<unknown>;
    };
  });
  methods.forEach = function (this: Map<unknown, unknown>, cb, thisArg?: unknown) {
    savedForEach.call(this, (v, k, m) => (steps++, cb.call(thisArg, v, k, m)));
  };
  try {
    fn();
  } finally {
    names.forEach((n, i) => (proto[n] = saved[i] as IteratorMethod));
    methods.forEach = savedForEach;
  }
  return steps;
}

t.test('mapSteps counts Map iteration (or the bound below would hold vacuously)', async (t) => {
  const m = new Map([
    [1, 1],
    [2, 2],
  ]);
  t.equal(
    mapSteps(() => {
      for (const e of m) void e;
      m.forEach(() => undefined);
    }),
    5,
  );
});

const allowed = (d: unknown) => (d as { allowed: boolean }).allowed;

t.test('memory limiter past max_keys: bounded, LRU evicted, a constant number of entries examined per new key', async (t) => {
  const clock = 1_000;
  const limiter = createMemoryLimiter(1000, () => clock);
  const b = bucketOf({ rate: 3, per: 3_600_000 }); // nothing expires during the test
  for (let i = 0; i < 1000; i++) limiter.take(`fill-${i}`, b);
  // An active client, refused for the last two: each take makes it the most recently used.
  const active = Array.from({ length: 5 }, () => allowed(limiter.take('active', b)));
  t.same(active, [true, true, true, false, false], 'its limit holds');

  let worst = 0;
  let largest = 0;
  for (let i = 0; i < 5000; i++) {
    worst = Math.max(
      worst,
      mapSteps(() => limiter.take(`flood-${i}`, b)),
    );
    largest = Math.max(largest, limiter.size);
    if (i % 500 === 0) t.notOk(allowed(limiter.take('active', b)), `still refused after ${i} new keys`);
  }
  t.equal(largest, 1000, 'never more than max_keys');
  t.equal(limiter.size, 1000, 'full, not emptied');
  t.ok(worst <= 20, `entries examined per new key: at most ${worst} (a sweep examined every key)`);

  // The least recently used goes: fill-* were taken before everything else, flood-4999 just now.
  const recent = limiter.take('flood-4999', b);
  t.ok(allowed(recent), 'a recent key keeps its bucket (2 of 3 left)');
  t.equal((recent as { remaining: number }).remaining, 1);
  t.notOk(allowed(limiter.take('active', b)), 'the active client kept its (empty) bucket through 5000 new keys');
});

t.test('memory limiter: a key seen longest ago is evicted first, not the first inserted', async (t) => {
  const limiter = createMemoryLimiter(3, () => 0);
  const b = bucketOf({ rate: 1, per: 3_600_000 });
  for (const k of ['a', 'b', 'c']) limiter.take(k, b);
  t.notOk(allowed(limiter.take('a', b)), 'a refused: and now the most recently used');
  limiter.take('d', b); // evicts b
  t.notOk(allowed(limiter.take('a', b)), 'a still refused: its bucket was kept');
  t.notOk(allowed(limiter.take('c', b)), 'c kept');
  t.ok(allowed(limiter.take('b', b)), 'b, least recently used, was evicted: a full bucket');
});

t.test('memory limiter: expired keys at the front go a few at a time, never a sweep', async (t) => {
  let clock = 0;
  const limiter = createMemoryLimiter(100, () => clock);
  const b = bucketOf({ rate: 10, per: 1_000 });
  for (let i = 0; i < 100; i++) limiter.take(`old-${i}`, b);
  clock += 10_000; // every bucket is full again
  const steps = mapSteps(() => limiter.take('new', b));
  t.ok(limiter.size < 100, `expired keys dropped (${limiter.size} left)`);
  t.ok(steps <= 20, `examined ${steps}`);
  for (let i = 0; i < 10; i++) limiter.take(`new-${i}`, b);
  t.ok(limiter.size <= 100);
});
