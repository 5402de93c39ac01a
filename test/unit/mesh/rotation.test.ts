import t from 'tap';
import { backoffDelay, createRenewalScheduler, isExpiring, renewalDelay } from '../../../src/mesh/rotation.js';

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

t.test('the scheduler on real timers: renews at renew_at, backs off while failing, stops', async (t) => {
  const started = Date.now();
  let cert = { notBefore: new Date(started), notAfter: new Date(started + 400) };
  const calls: number[] = [];
  const failures: Array<{ retryInMs: number; attempt: number }> = [];
  let stopAfter = Infinity;
  const scheduler = createRenewalScheduler({
    policy: { renewAt: 0.5, jitter: 0, maxBackoff: 200 },
    current: () => cert,
    async renew() {
      calls.push(Date.now() - started);
      if (calls.length === 1) throw new Error('CA down');
      cert = { notBefore: new Date(), notAfter: new Date(Date.now() + 400) };
      if (calls.length >= stopAfter) scheduler.stop();
    },
    onFailure: (_err, retryInMs, attempt) => failures.push({ retryInMs, attempt }),
  });
  t.teardown(() => scheduler.stop());
  scheduler.reschedule();
  t.ok(Math.abs((scheduler.nextAt?.getTime() ?? 0) - (started + 200)) < 20, 'planned at 50 % of the lifetime');
  stopAfter = 3;
  await new Promise((r) => setTimeout(r, 1200));
  t.equal(calls.length, 3, `renewals at ${calls.join(', ')} ms, then stopped`);
  t.ok((calls[0] ?? 0) >= 195, 'the first at renew_at, not before');
  t.equal(failures.length, 1);
  t.ok(
    failures[0] && failures[0].retryInMs >= 100 && failures[0].retryInMs <= 200 && failures[0].attempt === 1,
    'backoff capped by max_backoff',
  );
  const gap = (calls[2] ?? 0) - (calls[1] ?? 0);
  t.ok(gap >= 190 && gap < 400, `after a success, the next at 50 % of the new lifetime (${gap} ms)`);
});
