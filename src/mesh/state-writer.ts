/**
 * The running sidecar's writes to mesh.state_dir, one at a time and off the event loop. A
 * synchronous save of a renewed certificate (two files, four fsyncs) had held up every request for
 * as long as the disk took: 1.2 s per rotation at 300 ms an fsync. Writes run in the order asked, so
 * what is on disk never goes back to an older copy; a write still waiting when a newer one of the
 * same file set (slot) is asked is dropped, so a hung disk holds one write per slot, not a backlog.
 */
export type StateSlot = 'credentials' | 'bundle' | 'crl';

export interface StateWriter {
  /**
   * Queues `task` (it writes `slot`'s files). Settles when it ran, or when a newer write of the same
   * slot replaced it before it started; rejects with its error.
   */
  write(slot: StateSlot, task: () => Promise<void>): Promise<void>;
  /** True when no write is running or waiting. */
  readonly idle: boolean;
  /** Settles once nothing is running or waiting (at once when idle). */
  settled(): Promise<void>;
}

interface Queued {
  slot: StateSlot;
  task: () => Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export function createStateWriter(): StateWriter {
  const queue: Queued[] = [];
  let running = false;
  let waiters: (() => void)[] = [];

  /** Starts the next write, or wakes those waiting for idle: before the caller of the last one resumes. */
  const next = () => {
    const item = queue.shift();
    if (item === undefined) {
      running = false;
      const done = waiters;
      waiters = [];
      for (const wake of done) wake();
      return;
    }
    running = true;
    Promise.resolve()
      .then(item.task)
      .then(
        () => {
          next();
          item.resolve();
        },
        (err: unknown) => {
          next();
          item.reject(err);
        },
      );
  };

  return {
    write(slot, task) {
      return new Promise<void>((resolve, reject) => {
        const older = queue.findIndex((q) => q.slot === slot);
        // Dropped from its place and the newer one queued last: behind any other slot's write asked
        // after the older one, which may carry the same file (a renewal's save writes the bundle too).
        if (older >= 0) queue.splice(older, 1)[0]?.resolve();
        queue.push({ slot, task, resolve, reject });
        if (!running) next();
      });
    },
    get idle() {
      return !running && queue.length === 0;
    },
    settled() {
      if (!running && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}
