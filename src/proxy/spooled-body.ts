/**
 * A request body held while a streaming stage (the malware scan) decides on it: in memory up to
 * a limit, then in a temp file, so a large upload costs disk rather than heap. The file is
 * unlinked as soon as it is opened, so it disappears with its descriptor even if the process dies.
 * A spool disk that is full (or read-only) refuses the body with 503 ERR_OVERLOADED, like a full
 * memory budget: the request could not be held, not an internal error.
 */
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { WardenError } from '../errors.js';

const READ_CHUNK = 64 * 1024;
const EMPTY = Buffer.alloc(0);
/** The spool's filesystem has no room for the body (or cannot be written at all): nothing the request did wrong. */
const NO_ROOM = new Set(['ENOSPC', 'EDQUOT', 'EROFS']);

function spoolRefusal(err: NodeJS.ErrnoException, dir: string): WardenError {
  return new WardenError('ERR_OVERLOADED', {
    rule: 'limits.spool_dir',
    detail: 'The sidecar has no room to hold the request body; try again shortly.',
    headers: { 'retry-after': '1' },
    cause: err,
    // For the operator (the event's log line), not the client: which directory is full.
    attributes: { 'warden.detail': `${err.code as string} writing to spool_dir ${dir}`.slice(0, 256) },
  });
}

export class SpooledBody {
  #memory: Buffer[] = [];
  #memoryBytes = 0;
  #file: Promise<FileHandle> | undefined;
  #fileBytes = 0;
  /** Writes to the file, chained so they land in order. */
  #writes: Promise<unknown> = Promise.resolve();
  #failed: Error | undefined;
  #disposed = false;

  constructor(
    private readonly memoryLimit: number,
    /** Default: the OS temp dir, looked up only when a body spills (os.tmpdir() reads the environment). */
    private readonly dir?: string,
  ) {}

  get size(): number {
    return this.#memoryBytes + this.#fileBytes;
  }

  /** Whether the body went to disk. */
  get spilled(): boolean {
    return this.#file !== undefined;
  }

  /** The whole body, when it stayed in memory. */
  get buffer(): Buffer | undefined {
    if (this.#file) return undefined;
    if (this.#memory.length > 1) this.#memory = [Buffer.concat(this.#memory, this.#memoryBytes)];
    return this.#memory[0] ?? EMPTY;
  }

  /** Why the body could not be spooled, once a write has failed (flushed() rejects with it too). */
  get failure(): Error | undefined {
    return this.#failed;
  }

  /** Bytes not yet on disk: the caller pauses its source above a high-water mark. */
  get pendingBytes(): number {
    return this.#pending;
  }
  #pending = 0;

  append(chunk: Buffer): void {
    if (this.#disposed) return;
    if (!this.#file && this.#memoryBytes + chunk.length <= this.memoryLimit) {
      this.#memory.push(chunk);
      this.#memoryBytes += chunk.length;
      return;
    }
    this.#file ??= this.#openFile();
    const file = this.#file;
    const position = this.#fileBytes;
    this.#fileBytes += chunk.length;
    this.#pending += chunk.length;
    this.#writes = this.#writes.then(async () => {
      if (this.#failed) return;
      try {
        const fh = await file;
        let written = 0;
        while (written < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, written, chunk.length - written, position + written);
          written += bytesWritten;
        }
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        this.#failed = NO_ROOM.has(e.code ?? '') ? spoolRefusal(e, this.#dir()) : e;
      } finally {
        this.#pending -= chunk.length;
      }
    });
  }

  /** Resolves when every write has reached the file; rejects if one failed. */
  async flushed(): Promise<void> {
    await this.#writes;
    if (this.#failed) throw this.#failed;
  }

  /** The body from its first byte: the memory part, then the file. */
  async *chunks(): AsyncGenerator<Buffer> {
    for (const chunk of this.#memory) yield chunk;
    if (!this.#file) return;
    await this.flushed();
    const fh = await this.#file;
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
    for (let position = 0; position < this.#fileBytes;) {
      const { bytesRead } = await fh.read(buffer, 0, Math.min(READ_CHUNK, this.#fileBytes - position), position);
      if (bytesRead === 0) throw new Error('spooled body truncated');
      position += bytesRead;
      // A copy: the next read reuses the buffer while the consumer may still hold this one.
      yield Buffer.from(buffer.subarray(0, bytesRead));
    }
  }

  /** Frees the memory and closes (so deletes) the file. Safe to call more than once. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#memory = [];
    const file = this.#file;
    if (file) void this.#writes.then(() => file.then((fh) => fh.close())).catch(() => undefined);
  }

  #dir(): string {
    return this.dir ?? tmpdir();
  }

  async #openFile(): Promise<FileHandle> {
    const path = join(this.#dir(), `warden-body-${randomUUID()}`);
    const fh = await open(path, 'wx+', 0o600);
    await unlink(path);
    return fh;
  }
}
