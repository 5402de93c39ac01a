/**
 * One process per mesh.state_dir: a lock file taken at mesh startup and held for the process's life.
 * Two sidecars on one state dir (replicas sharing a ReadWriteMany volume, a pod restarted while the
 * old one still runs) would serve one key and overwrite each other's renewals.
 *
 * Node has no flock(2), and flock means little on NFS, so the lock is a file created with O_EXCL
 * that says who holds it, and whose mtime the holder refreshes (the heartbeat). A lock left by a
 * process that died (kill -9, OOM, a lost node) is taken over; judgeLock says when it is stale.
 * The heartbeat runs off the event loop (lock-heartbeat.ts): the state dir may be a mount that hangs.
 */
import { randomBytes } from 'node:crypto';
import {
  close,
  closeSync,
  fstatSync,
  fsyncSync,
  futimes,
  futimesSync,
  openSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startHeartbeat, type LockLoss } from './lock-heartbeat.js';

export type { LockLoss } from './lock-heartbeat.js';

export const LOCK_FILE = 'warden.lock';

/** What the lock file holds. */
export interface LockHolder {
  pid: number;
  hostname: string;
  /** Random, one per acquisition: this process's lock, or another incarnation's with the same pid. */
  id: string;
  /**
   * The kernel boot and pid namespace the pid belongs to: only where it equals ours does the pid
   * mean what ours does. Containers of one pod share a host name but not a pid namespace, and each
   * often runs as pid 1. Absent where /proc does not say.
   */
  pidSpace?: string;
  /** When it was taken (ISO 8601). */
  since: string;
}

/** The lock file as read: its holder (undefined when it does not parse) and what tells a heartbeat. */
export interface SeenLock {
  holder: LockHolder | undefined;
  text: string;
  mtimeMs: number;
}

export interface LockTimings {
  /** How often the holder refreshes the lock's mtime. */
  heartbeatMs: number;
  /** A lock whose mtime stays put this long is stale: a few heartbeats missed. */
  staleAfterMs: number;
}

export const DEFAULT_LOCK_TIMINGS: LockTimings = { heartbeatMs: 2_000, staleAfterMs: 8_000 };

/** Another process holds the lock. */
export class StateLockHeldError extends Error {
  constructor(
    readonly file: string,
    readonly holder: LockHolder | undefined,
    readonly reason: string,
  ) {
    super(`${file} is held by ${describeHolder(holder)} (${reason})`);
    this.name = 'StateLockHeldError';
  }
}

export interface StateLock {
  readonly file: string;
  /**
   * Why this process no longer holds it (taken over after a stall, or removed), or can no longer
   * tell (its file system stopped answering the heartbeat); undefined while it does.
   */
  readonly lost: LockLoss | undefined;
  /**
   * Removes the lock file if it is still ours; once. Calls the file system on the event loop only
   * while it answers the heartbeat: with a beat waiting (over 100 ms) the file is removed once that
   * beat answers, if the process still runs then, and with the lock lost for an unanswered beat it
   * is left; a lock left is taken over as stale.
   */
  release(): void;
}

/** `pid 12 on host orders-7d9f, since …`, or what is known of it. */
export function describeHolder(holder: LockHolder | undefined): string {
  return holder ? `pid ${holder.pid} on host ${holder.hostname}, since ${holder.since}` : 'a process whose lock file does not parse';
}

/** Ids of the locks this process holds: a second identity in one process must be refused too. */
const heldHere = new Set<string>();

export function currentPidSpace(): string | undefined {
  try {
    return `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}/${readlinkSync('/proc/self/ns/pid')}`;
  } catch {
    return undefined;
  }
}

/** process.kill(pid, 0): ESRCH is no such process; EPERM is one of another user's. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export interface JudgeContext {
  self: { pid: number; pidSpace: string | undefined };
  now: number;
  staleAfterMs: number;
  heldHere: (id: string) => boolean;
  isRunning: (pid: number) => boolean;
}

export type Verdict =
  | { verdict: 'live'; reason: string }
  | { verdict: 'stale'; reason: string }
  /** The lock file cannot say: stale unless its mtime moves within staleAfterMs (see watchHeartbeat). */
  | { verdict: 'watch'; reason: string };

/**
 * Whether a lock found in place is still held. Pid checks are sound only in our own pid space
 * (same boot, same pid namespace), where the clock is ours too; anywhere else — another pod or
 * node, another container of this pod, a previous run of this container (a restarted container
 * gets a new pid namespace, and is pid 1 again) — only a heartbeat seen moving proves a holder
 * alive, which needs no clock shared with it.
 */
export function judgeLock(seen: SeenLock, ctx: JudgeContext): Verdict {
  const { holder } = seen;
  if (!holder) return { verdict: 'watch', reason: 'its lock file does not parse (being written, or left half written)' };
  if (ctx.heldHere(holder.id)) return { verdict: 'live', reason: 'this very process holds it' };
  if (holder.pidSpace === undefined || holder.pidSpace !== ctx.self.pidSpace)
    return { verdict: 'watch', reason: 'in another container or on another host' };
  if (holder.pid === ctx.self.pid) return { verdict: 'stale', reason: `its pid ${holder.pid} is this process's now` };
  if (!ctx.isRunning(holder.pid)) return { verdict: 'stale', reason: `pid ${holder.pid} is not running` };
  const age = ctx.now - seen.mtimeMs;
  // A running pid that does not refresh the lock is another program that got the pid (or a holder stalled that long).
  if (age > ctx.staleAfterMs) return { verdict: 'stale', reason: `pid ${holder.pid} has not refreshed it for ${Math.round(age / 1000)} s` };
  return { verdict: 'live', reason: 'its process is running' };
}

/** The most of a lock file read: a holder is some 200 bytes. */
const LOCK_READ_BYTES = 4096;
const isMissing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';
const seenOf = (buffer: Buffer, bytes: number, mtimeMs: number): SeenLock => {
  const text = buffer.subarray(0, bytes).toString('utf8');
  return { holder: parseHolder(text), text, mtimeMs };
};

/** The lock file, read through open() (which revalidates NFS's cached attributes), or undefined if there is none. */
export function readLock(file: string): SeenLock | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
  try {
    const { mtimeMs } = fstatSync(fd);
    const buffer = Buffer.alloc(LOCK_READ_BYTES);
    return seenOf(buffer, readSync(fd, buffer, 0, buffer.length, 0), mtimeMs);
  } finally {
    closeSync(fd);
  }
}

/** readLock in the thread pool, for the heartbeat: the event loop never waits on the file system. */
async function readLockAsync(file: string): Promise<SeenLock | undefined> {
  const handle = await open(file, 'r').catch((err: unknown) => {
    if (isMissing(err)) return undefined;
    throw err;
  });
  if (!handle) return undefined;
  try {
    const { mtimeMs } = await handle.stat();
    const buffer = Buffer.alloc(LOCK_READ_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return seenOf(buffer, bytesRead, mtimeMs);
  } finally {
    await handle.close();
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    // A pid of 0 or below would make process.kill signal a process group.
    if (!Number.isSafeInteger(h.pid) || (h.pid as number) <= 0) return undefined;
    if (typeof h.hostname !== 'string' || typeof h.id !== 'string' || typeof h.since !== 'string') return undefined;
    if (h.pidSpace !== undefined && typeof h.pidSpace !== 'string') return undefined;
    return h as LockHolder;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sameLock = (a: SeenLock | undefined, b: SeenLock) => a !== undefined && a.text === b.text;

/**
 * Watches a lock for up to staleAfterMs: 'beat' when its mtime moves (its holder is alive),
 * 'changed' when it was released or replaced meanwhile, 'silent' when nothing moved.
 */
async function watchHeartbeat(file: string, seen: SeenLock, staleAfterMs: number): Promise<'beat' | 'changed' | 'silent'> {
  const end = Date.now() + staleAfterMs;
  const step = Math.max(10, Math.min(250, staleAfterMs / 8));
  while (Date.now() < end) {
    await sleep(step);
    const now = readLock(file);
    if (!sameLock(now, seen)) return 'changed';
    if (now?.mtimeMs !== seen.mtimeMs) return 'beat';
  }
  return 'silent';
}

/**
 * Removes a lock judged stale, unless it changed since it was judged. A guard file, itself taken
 * with O_EXCL, makes the check and the removal one step: two processes taking over the same stale
 * lock at once would otherwise each remove it, the second removing the first's new lock.
 */
function removeStale(file: string, seen: SeenLock, staleAfterMs: number): boolean {
  const guard = `${file}.takeover`;
  try {
    closeSync(openSync(guard, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process is taking over right now, or died doing it (then the guard is as old as a stale lock).
    const left = readLock(guard);
    if (left && Date.now() - left.mtimeMs > staleAfterMs) rmSync(guard, { force: true });
    return false;
  }
  try {
    if (!sameLock(readLock(file), seen)) return false;
    rmSync(file, { force: true });
    return true;
  } finally {
    rmSync(guard, { force: true });
  }
}

export interface AcquireOptions extends Partial<LockTimings> {
  /**
   * Called once if the lock is found removed or another process's (its file was taken over, or
   * deleted), or its heartbeat stays unanswered until another process may take it over.
   */
  onLost?: (loss: LockLoss) => void;
  /** Called when a stale lock is taken over, with whose and why. */
  onTakeover?: (holder: LockHolder | undefined, reason: string) => void;
}

/**
 * Takes the lock of `dir`, taking over a stale one; throws StateLockHeldError while another
 * process holds it, and the file system's error when the lock cannot be created (EACCES, EROFS…).
 */
export async function acquireStateLock(dir: string, options: AcquireOptions = {}): Promise<StateLock> {
  const { heartbeatMs, staleAfterMs } = { ...DEFAULT_LOCK_TIMINGS, ...options };
  const file = join(dir, LOCK_FILE);
  const self = { pid: process.pid, pidSpace: currentPidSpace() };
  for (let attempt = 0; attempt < 5; attempt++) {
    const holder: LockHolder = {
      pid: self.pid,
      hostname: hostname(),
      id: randomBytes(12).toString('hex'),
      ...(self.pidSpace !== undefined ? { pidSpace: self.pidSpace } : {}),
      since: new Date().toISOString(),
    };
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const seen = readLock(file);
      if (!seen) continue; // released meanwhile
      let judged = judgeLock(seen, { self, now: Date.now(), staleAfterMs, heldHere: (id) => heldHere.has(id), isRunning });
      if (judged.verdict === 'watch') {
        const watched = await watchHeartbeat(file, seen, staleAfterMs);
        if (watched === 'changed') continue;
        judged =
          watched === 'beat'
            ? { verdict: 'live', reason: `${judged.reason}, and its heartbeat is running` }
            : { verdict: 'stale', reason: `${judged.reason}, and no heartbeat for ${staleAfterMs / 1000} s` };
      }
      if (judged.verdict === 'live') throw new StateLockHeldError(file, seen.holder, judged.reason);
      if (removeStale(file, seen, staleAfterMs)) options.onTakeover?.(seen.holder, judged.reason);
      else await sleep(50); // another process is mid-takeover: let it finish, then judge its lock
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(holder));
      fsyncSync(fd);
      // On NFS a new file has the server's time: from here on its mtime is this host's clock.
      const now = new Date();
      futimesSync(fd, now, now);
    } catch (err) {
      closeSync(fd);
      rmSync(file, { force: true });
      throw err;
    }
    return hold(file, fd, holder.id, { heartbeatMs, staleAfterMs }, options.onLost);
  }
  throw new StateLockHeldError(file, readLock(file)?.holder, 'other processes keep taking it over');
}

const futimesAsync = promisify(futimes);
const closeAsync = promisify(close);
/**
 * A beat (a futimes and a read of some 200 bytes) in flight longer than this is a file system that
 * may not answer: release() then calls it no more on the event loop.
 */
const SLOW_BEAT_MS = 100;

function hold(file: string, fd: number, id: string, timings: LockTimings, onLost: ((loss: LockLoss) => void) | undefined): StateLock {
  heldHere.add(id);
  const heartbeat = startHeartbeat({
    ...timings,
    // The mtime of our own file (the fd): a file put in its place meanwhile is not refreshed for us.
    async beat() {
      const now = new Date();
      await futimesAsync(fd, now, now);
      const seen = await readLockAsync(file);
      if (seen?.holder?.id === id) return undefined;
      return seen ? `it is now held by ${describeHolder(seen.holder)}` : 'its lock file was removed';
    },
    onLost: (loss) => onLost?.(loss),
  });
  let released = false;
  return {
    file,
    get lost() {
      return heartbeat.lost;
    },
    release() {
      if (released) return;
      released = true;
      heartbeat.stop();
      heldHere.delete(id);
      // Its file system does not answer: close(2) may hang too (NFS flushes on close). The fd is
      // left open, and the file to be taken over as stale.
      if (heartbeat.lost?.cause === 'unanswered') return;
      const pending = heartbeat.pending;
      // Closed once no beat uses it: a number closed under a beat in flight may be reused by the
      // next open, and that beat's futimes would touch another file.
      const closeFd = () => (pending ? void pending.then(() => closeAsync(fd)).catch(() => {}) : closeSync(fd));
      if (heartbeat.waiting > SLOW_BEAT_MS) {
        // A beat that waits this long may be hung: removed after it answers, the event loop waiting on nothing.
        void pending
          ?.then(async () => {
            if ((await readLockAsync(file))?.holder?.id === id) await rm(file, { force: true });
          })
          .finally(closeFd)
          .catch(() => {});
        return;
      }
      try {
        if (readLock(file)?.holder?.id === id) rmSync(file, { force: true });
      } catch {
        // left in place (an I/O error): the next start finds no heartbeat and takes it over
      } finally {
        closeFd();
      }
    },
  };
}
