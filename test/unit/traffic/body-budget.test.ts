import t from 'tap';
import { bodyBudgetExceeded, createBodyBudget } from '../../../src/traffic/body-budget.js';

t.test('leases take while the total fits and give back all they took, once', async (t) => {
  const budget = createBodyBudget();
  const a = budget.lease(100);
  const b = budget.lease(100);
  t.ok(a.take(60));
  t.notOk(b.take(50), 'past the limit: refused, nothing taken');
  t.equal(budget.held, 60);
  t.ok(b.take(40), 'what is left fits');
  t.equal(budget.held, 100);
  a.release();
  t.equal(budget.held, 40);
  a.release();
  t.equal(budget.held, 40, 'a second release gives nothing back');
  // A reload's new limit applies to leases taken from then on.
  const c = budget.lease(50);
  t.notOk(c.take(20), '40 + 20 > 50');
  t.ok(c.take(10));
  b.release();
  c.release();
  t.equal(budget.held, 0);
});

t.test('a lease gives back part of its share, never more than it holds', async (t) => {
  const budget = createBodyBudget();
  const a = budget.lease(100);
  t.ok(a.take(70));
  a.giveBack(30);
  t.equal(budget.held, 40, 'the raw copy of a decoded body, given back');
  a.giveBack(500);
  t.equal(budget.held, 0, 'no more than it held');
  a.release();
  t.equal(budget.held, 0);
});

t.test('a body larger than the whole limit can never fit: 413, not 503', async (t) => {
  const budget = createBodyBudget();
  const other = budget.lease(100);
  t.ok(other.take(90));
  const mine = budget.lease(100);
  t.ok(mine.take(10));
  t.notOk(mine.take(20), 'does not fit now');
  t.equal(bodyBudgetExceeded(mine, 20).code, 'ERR_OVERLOADED', 'busy: 503, try again');
  t.equal(bodyBudgetExceeded(mine, 91).code, 'ERR_BODY_TOO_LARGE', 'never fits: 413');
  t.equal(bodyBudgetExceeded(mine, 91).rule, 'limits.max_buffered_bytes');
});

t.test('a released lease takes nothing more: a decode that outlives its request leaks nothing', async (t) => {
  const budget = createBodyBudget();
  const lease = budget.lease(100);
  t.ok(lease.take(30));
  lease.release();
  t.equal(budget.held, 0, 'released');
  t.notOk(lease.take(10), 'a take after the release fails (the decode of a client gone stops there)');
  lease.giveBack(10);
  lease.release();
  t.equal(budget.held, 0, 'and nothing was counted (it was, for good)');
});
