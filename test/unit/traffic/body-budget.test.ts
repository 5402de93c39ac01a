import t from 'tap';
import { createBodyBudget } from '../../../src/traffic/body-budget.js';

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
