import t from 'tap';
import { backoffDelay, isExpiring, renewalDelay } from '../../../src/mesh/rotation.js';

const policy = { renewAt: 0.7, jitter: 0.05, maxBackoff: 60_000 };
const notBefore = new Date(0);
const notAfter = new Date(24 * 3600_000);

t.test('renewal at 70 % of the lifetime, ± jitter', async (t) => {
  t.equal(
    renewalDelay(notBefore, notAfter, 0, policy, () => 0.5),
    Math.round(0.7 * 24 * 3600_000),
    'no jitter at the midpoint',
  );
  t.equal(
    renewalDelay(notBefore, notAfter, 0, policy, () => 0),
    Math.round(0.65 * 24 * 3600_000),
    'earliest',
  );
  t.equal(
    renewalDelay(notBefore, notAfter, 0, policy, () => 1),
    Math.round(0.75 * 24 * 3600_000),
    'latest',
  );
  t.equal(
    renewalDelay(notBefore, notAfter, 20 * 3600_000, policy, () => 0.5),
    0,
    'overdue: now',
  );
});

t.test('exponential backoff with jitter, capped', async (t) => {
  t.equal(
    backoffDelay(0, 60_000, () => 1),
    1000,
  );
  t.equal(
    backoffDelay(3, 60_000, () => 1),
    8000,
  );
  t.equal(
    backoffDelay(3, 60_000, () => 0),
    4000,
    'at least half',
  );
  t.equal(
    backoffDelay(20, 60_000, () => 1),
    60_000,
    'capped at max_backoff',
  );
  t.equal(
    backoffDelay(500, 60_000, () => 1),
    60_000,
    'no overflow',
  );
});

t.test('expiring = the last 10 % of the lifetime', async (t) => {
  t.notOk(isExpiring(notBefore, notAfter, 0.89 * 24 * 3600_000));
  t.ok(isExpiring(notBefore, notAfter, 0.91 * 24 * 3600_000));
});
