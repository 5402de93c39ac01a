/**
 * Who else could have written a file or directory of the CA. The CA directory holds the keys and the
 * database holds the bootstrap tokens (their hashes), the ledger and the revocations: a local user who
 * pre-created the directory `warden ca init` was pointed at (mode 0777, or owned by them), or who
 * symlinked `ca.db` to a file of theirs, could add token rows and enroll any identity, or delete
 * revocations. So the CA refuses, with the path and the fix:
 *
 * - a symbolic link where the database file is expected (`lstat`): the link's owner need not be the
 *   target's, and the target can be swapped under the CA. Set database.path to the file itself;
 * - an owner other than this process's user or root. Root is allowed: it can write anything anyway,
 *   so trusting its files adds no one, and the mount point of a Kubernetes volume is root's (with the
 *   pod's fsGroup as group) — refusing it would refuse the shipped deployment;
 * - write permission for others (`o+w`), sticky bit or not;
 * - write permission for the group, unless the group is one of this process's (its primary group or
 *   a supplementary one). Kubernetes' fsGroup makes a volume's files and directories group-writable
 *   for the pod's supplementary group at every mount, and a umask of 002 (user private groups) does
 *   the same with the user's own group: both are the deployment's own. Any other group could hold
 *   other users.
 *
 * Read permission is not checked: the database holds token hashes, not tokens, and public
 * certificates. On a platform without POSIX ownership (process.getuid is undefined: Windows) nothing
 * is checked.
 */
import { lstatSync, statSync, type Stats } from 'node:fs';

/** Why `stats` (of `path`) may have been written by another user, or undefined when it may not (the mesh state dir follows the same rule). */
export function ownershipProblem(path: string, stats: Stats, what: string): string | undefined {
  const uid = process.getuid?.();
  if (uid === undefined) return undefined;
  if (stats.uid !== uid && stats.uid !== 0) {
    return `${path}: the ${what} is owned by uid ${stats.uid}, not by this process's user (uid ${uid}) or root: another user may have made it; chown it to uid ${uid} if it is yours, or start afresh in a directory of your own`;
  }
  const mode = stats.mode & 0o7777;
  if (mode & 0o002) {
    return `${path}: the ${what} is writable by every user (mode ${mode.toString(8)}): chmod o-w it, and check that no one else changed what it holds`;
  }
  if (mode & 0o020 && !ownGroups().has(stats.gid)) {
    return `${path}: the ${what} is writable by group ${stats.gid}, not a group of this process (mode ${mode.toString(8)}): chmod g-w it (or chgrp it to this process's group), and check that no one else changed what it holds`;
  }
  return undefined;
}

function ownGroups(): Set<number> {
  const groups = new Set<number>(process.getgroups?.() ?? []);
  const gid = process.getgid?.();
  if (gid !== undefined) groups.add(gid);
  return groups;
}

/**
 * Throws when the directory `dir` (followed if a symbolic link: an administrator may link it to a
 * volume, and the target's owner is what counts) could have been written by another user. False
 * when there is no such directory.
 */
export function refuseForeignDirectory(dir: string, what = 'directory'): boolean {
  const stats = statSync(dir, { throwIfNoEntry: false });
  if (stats === undefined) return false;
  if (!stats.isDirectory()) throw new Error(`${dir}: the ${what} is not a directory`);
  const problem = ownershipProblem(dir, stats, what);
  if (problem) throw new Error(problem);
  return true;
}

/**
 * Throws when the file at `path`, if it exists, is a symbolic link, not a regular file, or could have
 * been written by another user. False when there is no file.
 */
export function refuseForeignFile(path: string, what: string): boolean {
  const stats = lstatSync(path, { throwIfNoEntry: false });
  if (stats === undefined) return false;
  if (stats.isSymbolicLink()) {
    throw new Error(
      `${path}: the ${what} is a symbolic link, which the CA does not follow (whoever can change the link chooses the file): give the file's own path (database.path), and check who made the link`,
    );
  }
  if (!stats.isFile()) throw new Error(`${path}: the ${what} is not a regular file`);
  const problem = ownershipProblem(path, stats, what);
  if (problem) throw new Error(problem);
  return true;
}
