/**
 * Files written whole or not at all: a temporary file (created exclusively, so never through a
 * planted file or symlink), written fully and fsynced, renamed over the target, then the directory
 * fsynced so the rename itself survives a power loss. Shared by the mesh state dir
 * (mesh/credential-store.ts), `warden ca init`'s manifest and the CA's published record.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

export function writeFileAtomic(file: string, data: string | Uint8Array, mode: number): void {
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fd = openSync(temp, 'wx', mode);
    try {
      writeFully(fd, typeof data === 'string' ? Buffer.from(data) : data, file);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  syncPath(dirname(file));
}

/**
 * writeFileAtomic off the event loop: every step runs on libuv's thread pool. A running sidecar saves
 * this way — an fsync on a slow or hung disk had held up every request for as long as it took.
 * `mayWrite` is asked before anything is created and again before the rename: false stops the
 * write (WriteNotAllowedError) with nothing put in place (a lock lost while the disk hung).
 */
export async function writeFileAtomicAsync(file: string, data: string | Uint8Array, mode: number, mayWrite?: () => boolean): Promise<void> {
  if (mayWrite?.() === false) throw new WriteNotAllowedError(file);
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      for (let offset = 0; offset < bytes.length;) {
        const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
        if (bytesWritten <= 0) throw new Error(`${file}: the write stored nothing at byte ${offset} of ${bytes.length}`);
        offset += bytesWritten;
      }
      const { size } = await handle.stat();
      if (size !== bytes.length) throw new Error(`${file}: ${size} bytes written of ${bytes.length}`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (mayWrite?.() === false) throw new WriteNotAllowedError(file);
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  const dir = await open(dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export class WriteNotAllowedError extends Error {
  constructor(file: string) {
    super(`${file} not written: the directory is no longer this process's to write (its lock was lost)`);
    this.name = 'WriteNotAllowedError';
  }
}

/** Syncs a file's data, or a directory's entries (a rename or link survives a power loss once its directory is synced). */
export function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * write(2) may store fewer bytes than asked and report no error (a file size limit, a nearly full
 * disk): write the rest until done — the next call then fails with the real cause (EFBIG, ENOSPC) —
 * and check the size, so a cut file is never renamed into place as good.
 */
function writeFully(fd: number, data: Uint8Array, file: string): void {
  for (let offset = 0; offset < data.length;) {
    const written = writeSync(fd, data, offset, data.length - offset);
    if (written <= 0) throw new Error(`${file}: the write stored nothing at byte ${offset} of ${data.length}`);
    offset += written;
  }
  const size = fstatSync(fd).size;
  if (size !== data.length) throw new Error(`${file}: ${size} bytes written of ${data.length}`);
}
