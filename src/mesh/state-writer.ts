/**
 * The running sidecar's writes to mesh.state_dir, one at a time and off the event loop. A
 * synchronous save of a renewed certificate (two files, four fsyncs) had held up every request for
 * as long as the disk took: 1.2 s per rotation at 300 ms an fsync. Writes run in the order asked, so
 * what is on disk never goes back to an older copy; a write still waiting when a newer one of the
 * same file set (slot) is asked is dropped, so a hung disk holds one write per slot, not a backlog.
 * With `retry`, a write that fails is tried again (doubling delays) until it lands or a newer write
 * of its slot is asked: a passing failure (ENOSPC, EIO) left the older file on disk until the next
 * renewal, hours later. No two slots write the same file: a renewal's save that also wrote
 * bundle.pem, retried, put an older bundle back after the refresher's newer one had landed.
 */
/** credentials: workload.pem; bundle: bundle.pem; crl: crl.der and crl-signer.pem. */
export type StateSlot = 'credentials' | 'bundle' | 'crl';

export interface StateWriter {
  /**
   * Queues `task` (it writes `slot`'s files). Settles when its first try ran, or when a newer write
   * of the same slot replaced it before it started; rejects with that try's error (retries, if
   * any, go on without the caller).
   */
  write(slot: StateSlot, task: () => Promise<void>): Promise<void>;
  /** True when no write is running or waiting (a retry waiting for its delay is not counted). */
  readonly idle: boolean;
  /** Settles once nothing is running or waiting (at once when idle). */
  settled(): Promise<void>;
}

export interface RetryPolicy {
  firstDelayMs: number;
  maxDelayMs: number;
  /** Asked when a retry is due: false gives it up (stopped, or the state dir's lock lost). */
  mayRetry(): boolean;
  /** A write landed on try `tries` (> 1). */
  onLanded(slot: StateSlot, tries: number): void;
}

interface Queued {
  slot: StateSlot;
  task: () => Promise<void>;
  /** The slot's generation when asked: a retry runs only while it is still the latest. */
  generation: number;
  tries: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const settledAlready = () => {};

export function createStateWriter(retry?: RetryPolicy): StateWriter {
  const queue: Queued[] = [];
  const latest: Record<StateSlot, number> = { credentials: 0, bundle: 0, crl: 0 };
  let running = false;
  let waiters: (() => void)[] = [];

  const enqueue = (item: Queued) => {
    const older = queue.findIndex((q) => q.slot === item.slot);
    // Dropped from its place and the newer one queued last, in the order asked.
    if (older >= 0) queue.splice(older, 1)[0]?.resolve();
    queue.push(item);
    if (!running) next();
  };

  const retryLater = (item: Queued) => {
    if (retry === undefined) return;
    const delay = Math.min(retry.maxDelayMs, retry.firstDelayMs * 2 ** (item.tries - 1));
    setTimeout(() => {
      if (latest[item.slot] !== item.generation || !retry.mayRetry()) return;
      enqueue({ ...item, tries: item.tries + 1, resolve: settledAlready, reject: settledAlready });
    }, delay).unref();
  };

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
          if (item.tries > 1) retry?.onLanded(item.slot, item.tries);
          item.resolve();
        },
        (err: unknown) => {
          next();
          retryLater(item);
          item.reject(err);
        },
      );
  };

  return {
    write(slot, task) {
      return new Promise<void>((resolve, reject) => {
        enqueue({ slot, task, generation: ++latest[slot], tries: 1, resolve, reject });
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
