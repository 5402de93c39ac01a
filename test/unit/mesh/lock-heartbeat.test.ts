/**
 * The lock's heartbeat off the event loop (lock-heartbeat.ts), with beats given by the test: one that
 * never answers (a hung mount; state-lock.test.ts hangs a real call, and shows the event loop
 * running meanwhile), slow ones, failing ones, and a real thread-pool call whose answer waits
 * behind an event loop stalled past the bound.
 */
import t from 'tap';
import { stat } from 'node:fs';
import { tmpdir } from 'node:os';
import { startHeartbeat, type LockLoss } from '../../../src/mesh/lock-heartbeat.js';

const timings = { heartbeatMs: 50, staleAfterMs: 300 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const never = () => new Promise<undefined>(() => {});
/** Holds the event loop, as a long synchronous task does. */
const stall = (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end);
};

t.test('a beat that never answers: no second beat starts, and the lock is lost once', async (t) => {
  const losses: LockLoss[] = [];
  let beats = 0;
  const heartbeat = startHeartbeat({
    ...timings,
    beat: () => (++beats === 1 ? Promise.resolve(undefined) : never()),
    onLost: (loss) => losses.push(loss),
  });
  t.teardown(() => heartbeat.stop());
  await sleep(700);
  t.equal(beats, 2, 'the one that answered, then the one that hangs: none behind it (one every 50 ms)');
  t.match(losses, [{ cause: 'unanswered', reason: /^the file system has not answered its heartbeat for 0\.\d s$/ }], 'lost, once');
  t.ok(heartbeat.pending, 'the hung call is still in flight');
  t.ok(heartbeat.waiting > 300, 'and says how long it has waited');
  t.same(heartbeat.lost, losses[0]);
});

t.test('the bound: a heartbeat before others may take the lock over, counted from the last beat that answered', async (t) => {
  // Answered at 200 ms (the mtime set then): others may take over from 1400 ms; it is given up at 1200 ms.
  const slow = { heartbeatMs: 200, staleAfterMs: 1200 };
  let answered = 0;
  let lostAt = 0;
  const heartbeat = startHeartbeat({
    ...slow,
    beat: () => {
      if (answered) return never();
      answered = Date.now();
      return Promise.resolve(undefined);
    },
    onLost: () => (lostAt = Date.now()),
  });
  t.teardown(() => heartbeat.stop());
  await sleep(1600);
  const after = lostAt - answered;
  t.ok(after >= 990 && after < 1200, `lost ${after} ms after the last beat that answered began: from 1000 ms, before 1200 ms`);
});

t.test('slow beats that answer within the bound keep the lock, one at a time', async (t) => {
  let inFlight = 0;
  let most = 0;
  let answered = 0;
  const heartbeat = startHeartbeat({
    heartbeatMs: 100,
    staleAfterMs: 1000,
    beat: async () => {
      most = Math.max(most, ++inFlight);
      // Over a heartbeat: the next beat starts at the tick after, and must answer before the bound
      // counted from this one's start, so up to (staleAfterMs - 2 heartbeats) / 2 keeps the lock.
      await sleep(150);
      inFlight--;
      answered++;
      return undefined;
    },
    onLost: (loss) => t.fail(`lost: ${loss.reason}`),
  });
  t.teardown(() => heartbeat.stop());
  await sleep(1200);
  t.equal(most, 1, 'never two in flight');
  t.ok(answered >= 3, `${answered} beats answered`);
  t.equal(heartbeat.lost, undefined);
});

t.test('a beat that finds another holder loses the lock as taken; no beat follows', async (t) => {
  let beats = 0;
  const losses: LockLoss[] = [];
  const heartbeat = startHeartbeat({
    ...timings,
    beat: async () => (++beats < 3 ? undefined : 'it is now held by pid 9 on host orders-2'),
    onLost: (loss) => losses.push(loss),
  });
  t.teardown(() => heartbeat.stop());
  await sleep(400);
  t.same(losses, [{ cause: 'taken', reason: 'it is now held by pid 9 on host orders-2' }]);
  t.equal(beats, 3);
});

t.test('failing beats (a passing I/O error) keep the lock; one that then hangs gets a heartbeat, no more', async (t) => {
  const losses: number[] = [];
  let beats = 0;
  let hungAt = 0;
  const began = Date.now();
  const heartbeat = startHeartbeat({
    ...timings,
    beat: () => {
      if (++beats <= 8) return Promise.reject(new Error('EIO'));
      hungAt = Date.now() - began;
      return never();
    },
    onLost: () => losses.push(Date.now() - began),
  });
  t.teardown(() => heartbeat.stop());
  await sleep(700);
  t.equal(losses.length, 1, 'lost once it hangs, not for the errors');
  t.ok(hungAt >= 390, `the errors did not lose it (it hung at ${hungAt} ms, past the bound)`);
  t.ok(losses[0]! - hungAt >= 45 && losses[0]! - hungAt < 200, `lost ${losses[0]! - hungAt} ms after it hung`);
});

t.test('an event loop stalled past the bound is not a file system that does not answer', async (t) => {
  // The stall comes after the poll phase, so the call's answer (a real stat in the thread pool,
  // done during the stall) is delivered after the next timers phase, where the watchdog is overdue.
  let beats = 0;
  const heartbeat = startHeartbeat({
    ...timings,
    beat: () =>
      new Promise<undefined>((resolve, reject) => {
        if (++beats > 1) return resolve(undefined);
        setImmediate(() => {
          stat(tmpdir(), (err) => (err ? reject(err) : resolve(undefined)));
          stall(500);
        });
      }),
    onLost: (loss) => t.fail(`lost: ${loss.reason}`),
  });
  t.teardown(() => heartbeat.stop());
  await sleep(900);
  t.ok(beats >= 3, `beats went on (${beats})`);
  t.equal(heartbeat.lost, undefined, 'still held');
});

t.test('stopped: no beat more, and one in flight loses nothing when it answers', async (t) => {
  let beats = 0;
  let answer: (notOurs: string | undefined) => void = () => {};
  const heartbeat = startHeartbeat({
    ...timings,
    beat: () => {
      beats++;
      return new Promise((resolve) => (answer = resolve));
    },
    onLost: (loss) => t.fail(`lost: ${loss.reason}`),
  });
  await sleep(80);
  t.ok(heartbeat.pending, 'a beat in flight');
  heartbeat.stop();
  answer('it is now held by pid 9 on host orders-2');
  await sleep(400);
  t.equal(beats, 1);
  t.equal(heartbeat.lost, undefined);
  t.equal(heartbeat.pending, undefined, 'settled');
});
