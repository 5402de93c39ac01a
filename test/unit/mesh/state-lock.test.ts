/**
 * The lock of mesh.state_dir: when a lock found in place is stale (judgeLock, a pure function), and
 * taking, refusing, taking over and releasing it on a real directory, with short timings; and its
 * heartbeat hung on a real blocking call (a FIFO in the lock file's place).
 */
import t, { type Test } from 'tap';
import { existsSync, linkSync, mkdtempSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  acquireStateLock,
  currentPidSpace,
  judgeLock,
  LOCK_FILE,
  StateLockHeldError,
  type JudgeContext,
  type LockHolder,
  type SeenLock,
} from '../../../src/mesh/state-lock.js';
import { hungFile, waitingOnFifo } from '../../support/hung-file.js';

const NOW = 1_800_000_000_000;
const SPACE = 'boot-a/pid:[4026531836]';
const ctx = (over: Partial<JudgeContext> = {}): JudgeContext => ({
  self: { pid: 1, pidSpace: SPACE },
  now: NOW,
  staleAfterMs: 8000,
  heldHere: () => false,
  isRunning: () => true,
  ...over,
});
const seen = (holder: Partial<LockHolder> | undefined, ageMs = 0): SeenLock => {
  const full = holder && { pid: 1, hostname: 'orders-1', id: 'other', pidSpace: SPACE, since: '2027-01-15T08:00:00.000Z', ...holder };
  return { holder: full, text: JSON.stringify(full ?? ''), mtimeMs: NOW - ageMs };
};

t.test('judgeLock: pids decide only in our own pid space; elsewhere the heartbeat is watched', async (t) => {
  t.match(judgeLock(seen({ id: 'mine' }), ctx({ heldHere: (id) => id === 'mine' })), { verdict: 'live' }, 'held by this process');
  t.match(
    judgeLock(seen({ pid: 1 }), ctx()),
    { verdict: 'stale', reason: /its pid 1 is this process's now/ },
    'same pid space, our own pid, not our lock: a previous run of ours (pid 1 again)',
  );
  t.match(
    judgeLock(seen({ pid: 4242 }), ctx({ isRunning: (pid) => pid !== 4242 })),
    { verdict: 'stale', reason: /pid 4242 is not running/ },
    'same pid space, a pid that is gone (kill -9)',
  );
  t.match(judgeLock(seen({ pid: 4242 }, 1000), ctx()), { verdict: 'live' }, 'same pid space, running, heartbeat fresh');
  t.match(
    judgeLock(seen({ pid: 4242 }, 9000), ctx()),
    { verdict: 'stale', reason: /has not refreshed it for 9 s/ },
    'same pid space, running but silent past the bound: the pid went to another program',
  );
  // Kubernetes: a pod's containers share the host name and are each pid 1, in pid namespaces of
  // their own; a restarted container gets a new one. Neither the pid nor the host name decides.
  t.match(
    judgeLock(seen({ pid: 1, pidSpace: 'boot-a/pid:[4026532999]', hostname: 'orders-1' }), ctx()),
    { verdict: 'watch' },
    'same host name and pid, another pid namespace: a sibling container or a previous run of this one',
  );
  t.match(judgeLock(seen({ pid: 1, pidSpace: 'boot-b/pid:[4026531836]' }), ctx()), { verdict: 'watch' }, 'another boot');
  t.match(judgeLock(seen({ pidSpace: undefined }), ctx()), { verdict: 'watch' }, 'a holder that did not know its pid space');
  t.match(judgeLock(seen({ pid: 77 }), ctx({ self: { pid: 77, pidSpace: undefined } })), { verdict: 'watch' }, 'nor we ours');
  t.match(
    judgeLock(seen({ pid: 7, pidSpace: 'elsewhere' }, 3_600_000), ctx()),
    { verdict: 'watch' },
    'an old mtime on another host is no proof: clocks differ',
  );
  t.match(judgeLock(seen(undefined), ctx()), { verdict: 'watch', reason: /does not parse/ }, 'a file that does not parse');
});

const lockDir = () => mkdtempSync(join(tmpdir(), 'warden-lock-'));
const fast = { heartbeatMs: 50, staleAfterMs: 300 };
const writeLock = (dir: string, holder: Partial<LockHolder>) =>
  writeFileSync(
    join(dir, LOCK_FILE),
    JSON.stringify({ pid: 1, hostname: 'elsewhere', id: 'theirs', since: new Date().toISOString(), ...holder }),
  );

t.test('taken, refused to a second taker in this process, released, taken again', async (t) => {
  const dir = lockDir();
  const lock = await acquireStateLock(dir, fast);
  const holder = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as LockHolder;
  t.match(holder, { pid: process.pid, hostname: hostname(), id: /^[0-9a-f]{24}$/ });
  t.equal(holder.pidSpace, currentPidSpace());
  const refused = await acquireStateLock(dir, fast).catch((err: unknown) => err);
  t.type(refused, StateLockHeldError);
  t.match((refused as StateLockHeldError).message, `held by pid ${process.pid} on host ${hostname()}`);
  const before = statSync(join(dir, LOCK_FILE)).mtimeMs;
  await new Promise((r) => setTimeout(r, 150));
  t.ok(statSync(join(dir, LOCK_FILE)).mtimeMs > before, 'the heartbeat moves its mtime');
  lock.release();
  lock.release();
  t.notOk(existsSync(join(dir, LOCK_FILE)), 'released: the file is gone');
  (await acquireStateLock(dir, fast)).release();
});

t.test('a lock in another pid space: refused while its heartbeat runs, taken over once it stops', async (t) => {
  const dir = lockDir();
  writeLock(dir, { pidSpace: 'another-node' });
  const beat = setInterval(() => utimesSync(join(dir, LOCK_FILE), new Date(), new Date()), 50);
  await t.rejects(acquireStateLock(dir, fast), { name: 'StateLockHeldError', message: /its heartbeat is running/ });
  clearInterval(beat);
  const takeovers: string[] = [];
  const started = Date.now();
  const lock = await acquireStateLock(dir, { ...fast, onTakeover: (holder, reason) => takeovers.push(`${holder?.id}: ${reason}`) });
  t.ok(Date.now() - started >= fast.staleAfterMs, 'after watching it for the bound');
  t.match(takeovers, [/^theirs: in another container or on another host, and no heartbeat for 0.3 s$/]);
  t.equal((JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as LockHolder).pid, process.pid, 'ours now');
  lock.release();
});

t.test('a lock file that does not parse (a crash while it was written) is taken over once it stays so', async (t) => {
  const dir = lockDir();
  writeFileSync(join(dir, LOCK_FILE), '');
  const lock = await acquireStateLock(dir, fast);
  t.equal((JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as LockHolder).pid, process.pid);
  lock.release();
});

t.test('taken over while held: the holder says it lost the lock, and its release leaves the other’s file', async (t) => {
  const dir = lockDir();
  const lost: string[] = [];
  const lock = await acquireStateLock(dir, { ...fast, onLost: ({ cause, reason }) => lost.push(`${cause}: ${reason}`) });
  writeLock(dir, { id: 'intruder', hostname: 'orders-2', pid: 9 });
  await new Promise((r) => setTimeout(r, 200));
  t.match(lost, [/^taken: it is now held by pid 9 on host orders-2/], 'said once');
  lock.release();
  t.equal((JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as LockHolder).id, 'intruder', 'not removed');
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The lock file made a FIFO (test/support/hung-file.ts) just after a beat moved its mtime, so that the
 * bound is counted from a beat that answered. The heartbeat's futimes is on its own fd and answers;
 * its reading the lock back is the call that hangs.
 */
async function hangLockFile(t: Test, dir: string, letGoAfterMs: number) {
  const file = join(dir, LOCK_FILE);
  const hung = await hungFile(t, file, letGoAfterMs);
  const mtime = statSync(file).mtimeMs;
  for (const end = Date.now() + 2000; statSync(file).mtimeMs === mtime && Date.now() < end;) await sleep(2);
  hung.hang();
  return hung;
}

t.test(
  'a heartbeat hung on the file system: the event loop runs on, one call waits, the lock is lost once; release does not wait',
  async (t) => {
    const dir = lockDir();
    const lost: string[] = [];
    const lock = await acquireStateLock(dir, { ...fast, onLost: ({ cause, reason }) => lost.push(`${cause}: ${reason}`) });
    const { letGo } = await hangLockFile(t, dir, 1500);
    // The longest the event loop went without running a 10 ms timer (the heartbeat waits from 50 ms on).
    let last = performance.now();
    let longest = 0;
    const ticker = setInterval(() => {
      longest = Math.max(longest, performance.now() - last);
      last = performance.now();
    }, 10);
    await sleep(700);
    clearInterval(ticker);
    t.ok(longest < 400, `the event loop ran while the heartbeat waited (at most ${Math.round(longest)} ms between 10 ms timers)`);
    t.match(
      lost,
      [/^unanswered: the file system has not answered its heartbeat for 0\.\d s$/],
      'lost once, before another process may take it over (0.3 s without a heartbeat)',
    );
    t.match(lock.lost, { cause: 'unanswered' });
    const waiting = waitingOnFifo();
    t.equal(waiting, 1, 'one thread-pool thread waits on the file system: no beat piled up behind it (one every 50 ms)', {
      skip: waiting === undefined && '/proc/self/task/*/wchan does not say which threads wait',
    });
    const before = performance.now();
    lock.release();
    t.ok(performance.now() - before < 50, 'release() does not wait on the file system');
    await letGo();
    t.equal(lost.length, 1, 'said once, even when the hung call answers at last');
  },
);

t.test('released while a beat waits on the file system: the lock file is removed once it answers', async (t) => {
  const dir = lockDir();
  const file = join(dir, LOCK_FILE);
  // Lost 0.9 s after the last beat that answered: time to see a beat wait, and release, before that.
  const lock = await acquireStateLock(dir, { heartbeatMs: 100, staleAfterMs: 1000 });
  linkSync(file, join(dir, 'ours'));
  const { letGo } = await hangLockFile(t, dir, 2500);
  // A beat waits on the FIFO, and for longer than release() calls a file system that answers (100 ms).
  for (const end = Date.now() + 2000; waitingOnFifo() === 0 && Date.now() < end;) await sleep(10);
  await sleep(250);
  t.equal(lock.lost, undefined, 'not lost yet');
  const before = performance.now();
  lock.release();
  t.ok(performance.now() - before < 50, 'release() does not wait on the file system');
  renameSync(join(dir, 'ours'), file); // the file system answers again, the lock file ours as it was
  await letGo();
  const deadline = Date.now() + 1000;
  while (existsSync(file) && Date.now() < deadline) await sleep(20);
  t.notOk(existsSync(file), 'removed once the beat answered');
});
