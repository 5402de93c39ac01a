/**
 * The revoked-token list: an entry lasts until its end and no longer; a full list refuses the next
 * revocation instead of dropping one that is still running (a dropped revocation is a token
 * accepted again), and makes room only from entries that have ended.
 */
import t from 'tap';
import { MAX_REVOCATION_END_MS, TokenDenylist } from '../../../src/identity/token-denylist.js';

t.test('an entry lasts until its end', async (t) => {
  const list = new TokenDenylist(10);
  t.ok(list.add('a', 2_000, 1_000));
  t.ok(list.has('a', 1_999));
  t.notOk(list.has('a', 2_000), 'ended');
  t.equal(list.size, 0, 'an ended entry is dropped when read');
  t.notOk(list.has('b', 1_000));
});

t.test('a later end wins; an earlier one does not shorten it', async (t) => {
  const list = new TokenDenylist(10);
  list.add('a', 2_000, 1_000);
  list.add('a', 1_500, 1_000);
  t.ok(list.has('a', 1_800));
  list.add('a', 5_000, 1_000);
  t.ok(list.has('a', 4_000));
});

t.test('full: no running revocation is dropped; ended ones make room', async (t) => {
  const list = new TokenDenylist(3);
  for (const h of ['a', 'b', 'c']) t.ok(list.add(h, 10_000, 1_000));
  t.notOk(list.add('d', 10_000, 1_000), 'refused: every entry is still running');
  for (const h of ['a', 'b', 'c']) t.ok(list.has(h, 2_000), `${h} still revoked`);
  t.notOk(list.has('d', 2_000));
  t.ok(list.add('a', 20_000, 1_000), 'a known entry can still be extended');

  const aging = new TokenDenylist(3);
  aging.add('a', 1_500, 1_000);
  aging.add('b', 10_000, 1_000);
  aging.add('c', 10_000, 1_000);
  t.ok(aging.add('d', 10_000, 2_000), 'room made from the entry that ended');
  t.equal(aging.size, 3);
  for (const h of ['b', 'c', 'd']) t.ok(aging.has(h, 2_000));
});

t.test('live: the revocations still running, to write back to Redis', async (t) => {
  const list = new TokenDenylist(10);
  list.add('a', 2_000, 1_000);
  list.add('b', 5_000, 1_000);
  t.same([...list.live(3_000)], [['b', 5_000]]);
});

t.test('an end centuries ahead is held as "for ever", within what Redis and a shared mark take', async (t) => {
  const list = new TokenDenylist(10);
  list.add('a', 1e19, 1_000); // exp 1e16 s
  list.add('b', Infinity, 1_000);
  t.same(
    [...list.live(1_000)],
    [
      ['a', MAX_REVOCATION_END_MS],
      ['b', MAX_REVOCATION_END_MS],
    ],
  );
  t.ok(String(MAX_REVOCATION_END_MS).length <= 16, 'an end a shared mark holds (16 digits)');
  t.ok(list.has('a', Date.UTC(9999, 0)), 'refused for ever');
});
