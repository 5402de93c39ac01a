/**
 * All or nothing for `warden ca init`. Deployments run `test -f bundle.pem || warden ca init`: an
 * init killed half-way used to leave keys without bundle.pem, and every later init refused the
 * directory as holding a CA. So the files are made in a staging directory inside DIR
 * (`.warden-ca-init`, on DIR's filesystem, under DIR's owner and fsGroup), each written and synced,
 * then a manifest (names and SHA-256) is synced, then each file is linked into DIR, bundle.pem last
 * and only after DIR is synced, and the staging directory is removed.
 *
 * The next init finds what a killed one left: a staging directory without a manifest is removed
 * (nothing reached DIR); with one, the files of DIR that it lists (by name and content) are removed
 * too, unless bundle.pem is among them — then that init had finished and only the staging directory
 * goes. The manifest never names anything but the CA's own file names. Renaming a sibling
 * directory onto DIR would be one step, but DIR is often a volume's mount point (compose) or a
 * directory its owner made beforehand under a parent the CA cannot write.
 */
import { createHash } from 'node:crypto';
import { linkSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CA_FILES } from './layout.js';
import { syncPath, writeFileAtomic } from '../config/atomic-file.js';
import { refuseForeignDirectory } from './file-ownership.js';

export const STAGING_DIR = '.warden-ca-init';
const MANIFEST = 'manifest.json';
const CA_FILE_NAMES = new Set<string>(Object.values(CA_FILES));

/** A file of the new CA: `make` creates it at the path given, exclusively. */
export interface StagedFile {
  name: string;
  make(path: string): void;
}

/** A file of that name appeared in DIR while the CA was being made (nothing of this init is left). */
export class TargetExistsError extends Error {
  constructor(readonly path: string) {
    super(`${path} appeared while the CA was being made`);
    this.name = 'TargetExistsError';
  }
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Writes `content` into a new file (never through one already there; installAtomically syncs it). */
export function writeNewFile(path: string, content: string, mode: number): void {
  writeFileSync(path, content, { mode, flag: 'wx' });
}

/**
 * Removes what an interrupted init left in `dir` (see above); returns the paths removed. A staging
 * entry that is not a plain directory, or a manifest that does not parse, is not guessed at: the
 * error names what to remove.
 */
export function removeInterruptedInit(dir: string): string[] {
  const staging = join(dir, STAGING_DIR);
  const stats = lstatSync(staging, { throwIfNoEntry: false });
  if (stats === undefined) return [];
  const remove = `remove it (rm -r ${staging}) and run warden ca init again`;
  if (!stats.isDirectory()) throw new Error(`${staging} is not the directory an interrupted warden ca init leaves: ${remove}`);
  refuseForeignDirectory(staging, 'staging directory of an interrupted warden ca init');
  let listed: { name: string; sha256: string }[] = [];
  const manifest = join(staging, MANIFEST);
  if (lstatSync(manifest, { throwIfNoEntry: false }) !== undefined) {
    try {
      listed = (JSON.parse(readFileSync(manifest, 'utf8')) as { files: { name: string; sha256: string }[] }).files;
      if (!Array.isArray(listed) || listed.some((f) => !CA_FILE_NAMES.has(f.name) || typeof f.sha256 !== 'string'))
        throw new Error('unexpected');
    } catch {
      throw new Error(
        `${manifest} is not the manifest warden ca init writes: check which files of ${dir} it made, remove them and ${remove}`,
      );
    }
  }
  // Ours: a regular file of that name with that content (the keys are new: nothing else has them).
  const ours = listed
    .map((f) => ({ path: join(dir, f.name), sha256: f.sha256 }))
    .filter((f) => lstatSync(f.path, { throwIfNoEntry: false })?.isFile() && sha256(f.path) === f.sha256)
    .map((f) => f.path);
  const finished = ours.includes(join(dir, CA_FILES.bundle));
  const removed = finished ? [] : ours;
  for (const path of removed) rmSync(path, { force: true });
  rmSync(staging, { recursive: true, force: true });
  syncPath(dir);
  return [...removed, staging];
}

/**
 * Makes `files` in the staging directory, then links them into `dir`, `last` at the end; returns
 * their paths in `dir`. On failure nothing of them is left in `dir`. A name already taken in `dir`
 * is a TargetExistsError (never replaced).
 */
export function installAtomically(dir: string, files: readonly StagedFile[], last: string): string[] {
  const staging = join(dir, STAGING_DIR);
  try {
    mkdirSync(staging, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    throw new Error(`${staging} appeared while this init ran: is another warden ca init running in ${dir}? Run one at a time`, {
      cause: err,
    });
  }
  const installed: string[] = [];
  try {
    for (const file of files) {
      const path = join(staging, file.name);
      file.make(path);
      syncPath(path);
    }
    const manifest = files.map((f) => ({ name: f.name, sha256: sha256(join(staging, f.name)) }));
    // Renamed into place: a manifest is whole or absent, never the empty file a kill mid-write leaves.
    writeFileAtomic(join(staging, MANIFEST), JSON.stringify({ files: manifest }), 0o600);
    const ordered = [...files.filter((f) => f.name !== last), ...files.filter((f) => f.name === last)];
    for (const { name } of ordered) {
      // DIR synced before the last link: after a power loss, bundle.pem is never there without the rest.
      if (name === last) syncPath(dir);
      const target = join(dir, name);
      moveNoReplace(join(staging, name), target);
      installed.push(target);
    }
    syncPath(dir);
  } catch (err) {
    for (const path of installed) rmSync(path, { force: true });
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  rmSync(staging, { recursive: true, force: true });
  syncPath(dir);
  return installed;
}

/**
 * link + unlink: link(2) fails on a name already there (rename(2) would replace it, even a dangling
 * symbolic link put there meanwhile). On a filesystem without hard links, rename after a check.
 */
function moveNoReplace(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new TargetExistsError(to);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    if (lstatSync(to, { throwIfNoEntry: false }) !== undefined) throw new TargetExistsError(to);
    renameSync(from, to);
    return;
  }
  unlinkSync(from);
}
