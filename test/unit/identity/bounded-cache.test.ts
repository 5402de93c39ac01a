import t from 'tap';
import { BoundedCache } from '../../../src/identity/bounded-cache.js';

function fakeClock(start = 1_000_000) {
  const clock = { ms: start, now: () => clock.ms };
  return clock;
}

t.test('entry-count bound: the least recently used entry is evicted, and a get refreshes recency', async (t) => {
  const clock = fakeClock();
  const cache = new BoundedCache<string>({ maxEntries: 2, maxBytes: 1000, now: clock.now });
  const until = clock.ms + 60_000;
  cache.set('a', 'A', 10, until);
  cache.set('b', 'B', 10, until);
  clock.ms += 1000; // recency is refreshed at most once per second per entry
  t.equal(cache.get('a')?.value, 'A', 'a is read, so b is now the least recently used');
  cache.set('c', 'C', 10, until);
  t.equal(cache.size, 2);
  t.equal(cache.get('b'), undefined, 'b evicted');
  t.equal(cache.get('a')?.value, 'A', 'a kept because the get refreshed it');
  t.equal(cache.get('c')?.value, 'C');
  t.equal(cache.bytes, 20, 'the evicted entry no longer counts');

  // Without the refreshing get, insertion order decides.
  const plain = new BoundedCache<string>({ maxEntries: 2, maxBytes: 1000, now: clock.now });
  plain.set('a', 'A', 10, until);
  plain.set('b', 'B', 10, until);
  plain.set('c', 'C', 10, until);
  t.equal(plain.get('a'), undefined, 'oldest evicted');
  t.equal(plain.get('b')?.value, 'B');
});

t.test('a hit within a second of the last refresh does not reorder (approximate LRU, cheaper per hit)', async (t) => {
  const clock = fakeClock();
  const cache = new BoundedCache<string>({ maxEntries: 2, maxBytes: 1000, now: clock.now });
  const until = clock.ms + 60_000;
  cache.set('a', 'A', 10, until);
  cache.set('b', 'B', 10, until);
  clock.ms += 999;
  cache.get('a');
  cache.set('c', 'C', 10, until);
  t.equal(cache.get('a'), undefined, 'a was not moved: still the oldest');
  t.equal(cache.get('b')?.value, 'B');
});

t.test('re-setting a key replaces it without counting its bytes twice', async (t) => {
  const clock = fakeClock();
  const cache = new BoundedCache<string>({ maxEntries: 10, maxBytes: 1000, now: clock.now });
  cache.set('a', 'A1', 100, clock.ms + 1000);
  cache.set('a', 'A2', 30, clock.ms + 1000);
  t.equal(cache.size, 1);
  t.equal(cache.bytes, 30);
  t.equal(cache.get('a')?.value, 'A2');
});

t.test('byte bound: least recently used entries go until the total fits', async (t) => {
  const clock = fakeClock();
  const cache = new BoundedCache<string>({ maxEntries: 100, maxBytes: 100, now: clock.now });
  const until = clock.ms + 60_000;
  cache.set('a', 'A', 40, until);
  cache.set('b', 'B', 40, until);
  cache.set('c', 'C', 20, until);
  t.equal(cache.bytes, 100, 'exactly at the bound is allowed');
  t.equal(cache.size, 3);
  clock.ms += 1000;
  cache.get('a');
  cache.set('d', 'D', 50, until);
  t.equal(cache.get('b'), undefined, 'b (least recently used) evicted first');
  t.equal(cache.get('c'), undefined, 'then c, since 40 + 40 + 50 still exceeded the bound');
  t.equal(cache.get('a')?.value, 'A');
  t.equal(cache.get('d')?.value, 'D');
  t.equal(cache.bytes, 90);
  t.equal(cache.size, 2);
});

t.test('an entry larger than maxBytes is not stored and evicts nothing', async (t) => {
  const clock = fakeClock();
  const cache = new BoundedCache<string>({ maxEntries: 10, maxBytes: 100, now: clock.now });
  cache.set('small', 'S', 60, clock.ms + 1000);
  cache.set('huge', 'H', 101, clock.ms + 1000);
  t.equal(cache.get('huge'), undefined);
  t.equal(cache.size, 1);
  t.equal(cache.bytes, 60);
  t.equal(cache.get('small')?.value, 'S', 'the existing entry survives');
});

t.test('an entry already past its staleUntil is not stored', async (t) => {
  const clock = fakeClock();
  const cache = new BoundedCache<string>({ maxEntries: 10, maxBytes: 100, now: clock.now });
  cache.set('past', 'P', 10, clock.ms - 1);
  cache.set('now', 'N', 10, clock.ms);
  t.equal(cache.size, 0);
  t.equal(cache.bytes, 0);
});

t.test('get after staleUntil returns undefined and frees the bytes', async (t) => {
  const clock = fakeClock();
  const cache = new BoundedCache<string>({ maxEntries: 10, maxBytes: 1000, now: clock.now });
  cache.set('a', 'A', 70, clock.ms + 1000, clock.ms + 5000);
  cache.set('b', 'B', 30, clock.ms + 1000, clock.ms + 5000);
  clock.ms += 4999;
  t.equal(cache.get('a')?.value, 'A', 'still served 1 ms before staleUntil');
  clock.ms += 1;
  t.equal(cache.get('a'), undefined, 'gone at staleUntil');
  t.equal(cache.size, 1);
  t.equal(cache.bytes, 30);
  t.equal(cache.get('b', clock.ms - 10)?.value, 'B', 'an explicit `now` argument overrides the clock');
});

t.test('hits never extend the life of an entry', async (t) => {
  const clock = fakeClock();
  const cache = new BoundedCache<string>({ maxEntries: 10, maxBytes: 1000, now: clock.now });
  const freshUntil = clock.ms + 1000;
  cache.set('a', 'A', 10, freshUntil);
  for (let i = 0; i < 9; i++) {
    clock.ms += 100;
    const entry = cache.get('a');
    t.equal(entry?.freshUntil, freshUntil, `hit ${i + 1} keeps freshUntil`);
    t.equal(entry?.staleUntil, freshUntil, `hit ${i + 1} keeps staleUntil (defaults to freshUntil)`);
  }
  clock.ms = freshUntil;
  t.equal(cache.get('a'), undefined, 'expires at the time fixed when it was stored, despite the hits');
});

t.test('stale window: between freshUntil and staleUntil the entry is returned with its times', async (t) => {
  const clock = fakeClock();
  const cache = new BoundedCache<string>({ maxEntries: 10, maxBytes: 1000, now: clock.now });
  const freshUntil = clock.ms + 1000;
  const staleUntil = clock.ms + 3000;
  cache.set('a', 'A', 10, freshUntil, staleUntil);
  const fresh = cache.get('a');
  t.ok(fresh !== undefined && clock.ms < fresh.freshUntil, 'fresh at first');
  clock.ms += 2000;
  const stale = cache.get('a');
  t.equal(stale?.value, 'A', 'served in the stale window');
  t.equal(stale?.freshUntil, freshUntil);
  t.equal(stale?.staleUntil, staleUntil);
  t.ok(stale !== undefined && clock.ms >= stale.freshUntil && clock.ms < stale.staleUntil, 'the caller can see it is stale');

  cache.set('b', 'B', 10, clock.ms + 5000, clock.ms + 10);
  t.equal(cache.get('b')?.staleUntil, clock.ms + 5000, 'staleUntil is never before freshUntil');
});

t.test('delete and clear keep the byte count right', async (t) => {
  const clock = fakeClock();
  const cache = new BoundedCache<string>({ maxEntries: 10, maxBytes: 1000, now: clock.now });
  cache.set('a', 'A', 10, clock.ms + 1000);
  cache.set('b', 'B', 25, clock.ms + 1000);
  t.equal(cache.bytes, 35);
  t.equal(cache.delete('a'), true);
  t.equal(cache.bytes, 25);
  t.equal(cache.size, 1);
  t.equal(cache.delete('a'), false, 'deleting again changes nothing');
  t.equal(cache.bytes, 25);
  t.equal(cache.delete('missing'), false);
  cache.clear();
  t.equal(cache.size, 0);
  t.equal(cache.bytes, 0);
  t.equal(cache.get('b'), undefined);
  cache.set('c', 'C', 1000, clock.ms + 1000);
  t.equal(cache.bytes, 1000, 'after clear the whole byte budget is available again');
  t.equal(cache.get('c')?.value, 'C');
});
