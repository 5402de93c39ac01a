/**
 * One `warden ca admin issue` at a time per CA directory: two runs at once could each write its key
 * and then the other's certificate, leaving admin.key and admin.crt of two different pairs. The
 * lock is a file created with O_EXCL, saying who holds it, removed when the run ends. One left by a
 * run that is gone (killed by a signal) is taken over with a warning when that can be told for sure:
 * the same host and pid namespace, and no process with that pid. Otherwise it is refused, naming it.
 */
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const ADMIN_ISSUE_LOCK = 'admin-issue.lock';

/** Another run holds the lock (or one that was killed left it, and it cannot be told gone). */
export class AdminIssueLockedError extends Error {
  constructor(readonly file: string) {
    super(
      `${file} exists: another warden ca admin issue is running (${holderOf(file)}); wait for it, or, if none is (a run that was killed), remove ${file} and run again`,
    );
    this.name = 'AdminIssueLockedError';
  }
}

function holderOf(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim() || 'holder unknown';
  } catch {
    return 'holder unknown';
  }
}

/**
 * The pid namespace of this process (Linux: `pid:[inode]`), undefined elsewhere. Two containers can
 * share a host name and a volume but not see each other's processes: a pid is judged only in its own.
 */
function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

/** What the lock says of its holder; the namespace only where there is one. */
function holderLine(): string {
  const ns = pidNamespace();
  return `pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}${ns === undefined ? '' : ` (pid namespace ${ns})`}`;
}

/** Whether the holder the lock names is for sure not running: same host and pid namespace, no such process. */
function holderGone(holder: string): boolean {
  const ns = pidNamespace();
  const named = /^pid (\d+) on (\S+) since \S+ \(pid namespace (\S+)\)$/.exec(holder);
  if (!named || ns === undefined || named[2] !== hostname() || named[3] !== ns) return false;
  try {
    process.kill(Number(named[1]), 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * The lock of a run that is gone, taken over. Under a second lock file (`.takeover`, O_EXCL): two runs
 * finding the same stale lock would otherwise both remove it, the second removing the first's new one.
 */
function takeOver(file: string, warn: (message: string) => void): number {
  const guard = `${file}.takeover`;
  try {
    closeSync(openSync(guard, 'wx', 0o600));
  } catch (err) {
    // Another run is taking it over (or one killed doing so left the guard: it names that file).
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AdminIssueLockedError(guard);
    throw err;
  }
  try {
    const holder = holderOf(file);
    if (existsSync(file)) {
      if (!holderGone(holder)) throw new AdminIssueLockedError(file);
      rmSync(file);
      warn(`warden ca admin issue: ${file} was left by a run that is gone (${holder}): taken over`);
    }
    try {
      return openSync(file, 'wx', 0o600);
    } catch (err) {
      // A new run took the lock in between (it never waits for the guard): it holds it.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AdminIssueLockedError(file);
      throw err;
    }
  } finally {
    rmSync(guard, { force: true });
  }
}

/**
 * Runs `work` holding the CA directory's admin-issue lock, removed however `work` ends. A run killed
 * by a signal leaves it: the next run takes it over (saying so through `warn`) when that run is
 * surely gone, and otherwise refuses (AdminIssueLockedError), naming the holder.
 */
export async function withAdminIssueLock<T>(
  dir: string,
  work: () => Promise<T>,
  warn: (message: string) => void = (message) => console.error(message),
): Promise<T> {
  const file = join(dir, ADMIN_ISSUE_LOCK);
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    fd = takeOver(file, warn);
  }
  try {
    try {
      writeSync(fd, `${holderLine()}\n`);
    } finally {
      closeSync(fd);
    }
    return await work();
  } finally {
    rmSync(file, { force: true });
  }
}
