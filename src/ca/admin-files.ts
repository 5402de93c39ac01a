/**
 * Writing admin.key and admin.crt for `warden ca admin issue`: each whole (atomic-file.ts), the key
 * first, and the two as a pair: when admin.crt cannot be written after admin.key was, admin.key is
 * put back as it was (removed when there was none), so the directory never holds the new key beside
 * the old certificate. A run killed between the two can still leave that; a second run mends it.
 */
import { lstatSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../config/atomic-file.js';
import { CA_FILES } from './layout.js';

/** admin.key or admin.crt could not be written; `restored` says what became of admin.key. */
export class AdminFileWriteError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
    readonly restored: string,
    options: { cause: unknown },
  ) {
    super(`${file} could not be written (${reason})`, options);
    this.name = 'AdminFileWriteError';
  }
}

/** Writes the new pair; throws AdminFileWriteError with admin.key as it was before when either fails. */
export function writeAdminPair(dir: string, keyPem: string, certPem: string): { keyPath: string; certPath: string } {
  const keyPath = join(dir, CA_FILES.adminKey);
  const certPath = join(dir, CA_FILES.adminCert);
  const previousKey = regularFileBytes(keyPath);
  try {
    writeFileAtomic(keyPath, keyPem, 0o600);
  } catch (err) {
    throw new AdminFileWriteError(keyPath, reasonOf(err), 'admin.key and admin.crt are as they were', { cause: err });
  }
  try {
    writeFileAtomic(certPath, certPem, 0o644);
  } catch (err) {
    throw new AdminFileWriteError(certPath, reasonOf(err), putBack(keyPath, previousKey), { cause: err });
  }
  return { keyPath, certPath };
}

/** A regular file's bytes; undefined when there is none (lost) or it is something else. */
function regularFileBytes(file: string): Buffer | undefined {
  try {
    return lstatSync(file).isFile() ? readFileSync(file) : undefined;
  } catch {
    return undefined;
  }
}

function putBack(keyPath: string, previous: Buffer | undefined): string {
  try {
    if (previous === undefined) rmSync(keyPath, { force: true });
    else writeFileAtomic(keyPath, previous, 0o600);
    return previous === undefined ? `the new ${keyPath} removed` : `${keyPath} put back as it was`;
  } catch (err) {
    return `${keyPath} holds the new key and could not be put back (${reasonOf(err)}): restore it from a backup`;
  }
}

/** The errno code and the syscall ("EISDIR on rename"), or the message of another error. */
function reasonOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}${e.syscall ? ` on ${e.syscall}` : ''}` : e.message;
}
