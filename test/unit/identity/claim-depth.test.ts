/**
 * The claims depth bound (src/identity/claim-depth.ts): measured without recursion, whatever the
 * depth, and exact at the limit.
 */
import t from 'tap';
import { MAX_CLAIM_DEPTH, nestsDeeperThan } from '../../../src/identity/claim-depth.js';

const nested = (levels: number): unknown => JSON.parse(`${'{"o":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`);

t.test('objects and arrays count one level each; scalars none', async (t) => {
  t.equal(MAX_CLAIM_DEPTH, 32);
  t.notOk(nestsDeeperThan('x', 0), 'a scalar has no depth');
  t.notOk(nestsDeeperThan(null, 0));
  t.notOk(nestsDeeperThan({}, 1));
  t.ok(nestsDeeperThan({}, 0));
  t.notOk(nestsDeeperThan({ a: [1, 'x', { b: null }] }, 3));
  t.ok(nestsDeeperThan({ a: [1, 'x', { b: [] }] }, 3), 'the deepest branch counts, wherever it is');
  t.notOk(nestsDeeperThan(nested(MAX_CLAIM_DEPTH)), '32 levels pass');
  t.ok(nestsDeeperThan(nested(MAX_CLAIM_DEPTH + 1)), '33 do not');
  t.notOk(nestsDeeperThan({ realm_access: { roles: ['a', 'b'] }, act: { sub: 'svc', act: { sub: 'x' } } }), 'real claims');
});

t.test('any depth is measured without overflowing the stack', async (t) => {
  const deep = JSON.parse(`${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`) as unknown;
  t.ok(nestsDeeperThan(deep));
  t.throws(() => JSON.stringify(deep), RangeError, 'what JSON.stringify does with it');
  const wide = { items: Array.from({ length: 100_000 }, (_, i) => ({ i })) };
  t.notOk(nestsDeeperThan(wide), 'wide is not deep');
});
