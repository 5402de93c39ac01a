/**
 * One `warden ca admin issue` at a time per CA directory: two runs at once could each write its key
 * and then the other's certificate, leaving admin.key and admin.crt of two different pairs. The
 * lock is a file created with O_EXCL, saying who holds it, removed when the run ends.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const ADMIN_ISSUE_LOCK = 'admin-issue.lock';

/** Another run holds the lock (or one that was killed left it). */
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
 * Runs `work` holding the CA directory's admin-issue lock, removed however `work` ends. A run killed
 * by a signal leaves it: the next run says so (AdminIssueLockedError), naming the holder.
 */
export async function withAdminIssueLock<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const file = join(dir, ADMIN_ISSUE_LOCK);
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AdminIssueLockedError(file);
    throw err;
  }
  try {
    try {
      writeSync(fd, `pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}\n`);
    } finally {
      closeSync(fd);
    }
    return await work();
  } finally {
    rmSync(file, { force: true });
  }
}
