/**
 * A file whose opening hangs, for real: a FIFO put in its place. Opening a FIFO for reading waits,
 * in the kernel, until a writer opens it, as a call on a hung mount (hard NFS) waits for its
 * server; an asynchronous open holds a thread of libuv's pool meanwhile, a synchronous one the event
 * loop. No root, no FUSE.
 *
 * Opening the FIFO for writing lets a waiting reader go (it then reads nothing: a file that does not
 * parse). A worker thread does so every 20 ms from `letGoAfterMs` on: it has an event loop of its
 * own, so code that blocks this process's loop on the FIFO is let go as well, and its test ends.
 * A process whose pool thread still waits cannot exit (Node joins the pool): teardown lets it go.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, constants, linkSync, openSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Teardown } from './sidecar.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const LET_GO = `
const { workerData } = require('node:worker_threads');
const { closeSync, constants, openSync } = require('node:fs');
setTimeout(() => setInterval(() => {
  try { closeSync(openSync(workerData.fifo, constants.O_WRONLY | constants.O_NONBLOCK)); } catch {}
}, 20), workerData.afterMs);`;

/** Threads of this process waiting to open a FIFO, or undefined where /proc does not say (not Linux, wchan hidden). */
export function waitingOnFifo(): number | undefined {
  try {
    const wchans = readdirSync('/proc/self/task').map((task) => readFileSync(`/proc/self/task/${task}/wchan`, 'utf8'));
    return wchans.some((w) => w !== '' && w !== '0') ? wchans.filter((w) => w === 'wait_for_partner').length : undefined;
  } catch {
    return undefined;
  }
}

export interface HungFile {
  /** Puts the FIFO in the file's place (atomically: a rename). */
  hang: () => void;
  /** Lets any reader waiting on the FIFO go, until none waits. */
  letGo: () => Promise<void>;
}

/** A FIFO beside `file`, and the worker that lets its readers go; `hang()` puts it in the file's place. */
export async function hungFile(t: Teardown, file: string, letGoAfterMs: number): Promise<HungFile> {
  const fifo = join(dirname(file), `hung-${process.pid}-${Date.now()}.fifo`);
  execFileSync('mkfifo', [fifo]);
  const worker = new Worker(LET_GO, { eval: true, workerData: { fifo, afterMs: letGoAfterMs }, execArgv: [] });
  await once(worker, 'online');
  // Left running until the process exits: a teardown that runs after this one (a drain that releases
  // the lock) may open the FIFO too, in code that blocks the event loop.
  worker.unref();
  const letGo = async () => {
    const end = Date.now() + 3000;
    do {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // ENXIO: no reader at this moment
      }
      await sleep(20);
    } while ((waitingOnFifo() ?? 0) > 0 && Date.now() < end);
  };
  t.teardown(letGo);
  return {
    hang() {
      const link = `${fifo}.link`;
      linkSync(fifo, link);
      renameSync(link, file);
    },
    letGo,
  };
}
