/**
 * The heartbeat of the state dir's lock (state-lock.ts), off the event loop. A synchronous call on a
 * hung file system (a hard-mounted NFS whose server is gone) never returns: made every 2 s on the
 * event loop, it froze the whole sidecar — traffic, /healthz, the drain on SIGTERM.
 *
 * Each beat is asynchronous (libuv's thread pool) and at most one is in flight: a hung call holds
 * one of the pool's 4 threads, which DNS, crypto and zlib share, and a beat started every 2 s behind
 * it would soon hold them all. A beat still unanswered when another process may take the lock over
 * loses it, as a takeover found by a beat does.
 */
import { performance } from 'node:perf_hooks';

/** Why a lock held is lost: another process has it (or its file is gone), or its file system stopped answering. */
export interface LockLoss {
  cause: 'taken' | 'unanswered';
  reason: string;
}

export interface HeartbeatOptions {
  /**
   * Refreshes the lock's mtime and reads the lock back: undefined while it is still ours, else why
   * not. A rejection is a passing I/O error: the next beat tries again.
   */
  beat: () => Promise<string | undefined>;
  heartbeatMs: number;
  /** Another process takes the lock over once its mtime has not moved for this long. */
  staleAfterMs: number;
  onLost: (loss: LockLoss) => void;
  /** A monotonic clock in ms (tests); performance.now by default. */
  now?: () => number;
}

export interface Heartbeat {
  readonly lost: LockLoss | undefined;
  /** The beat in flight, settled once its calls answer (they may never). */
  readonly pending: Promise<void> | undefined;
  /** How long the beat in flight has waited (ms), 0 when none is. */
  readonly waiting: number;
  /** No more beats; one in flight is left to end (or not) on its own, and can lose the lock no more. */
  stop(): void;
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** Beats every heartbeatMs from now: the lock's mtime was just set by whoever took it. */
export function startHeartbeat(options: HeartbeatOptions): Heartbeat {
  const { beat, heartbeatMs, staleAfterMs, onLost } = options;
  const now = options.now ?? (() => performance.now());
  /** When the last beat that answered "ours" began: the mtime it set is at least that recent. */
  let lastBeat = now();
  let pending: Promise<void> | undefined;
  let pendingSince = 0;
  let lost: LockLoss | undefined;
  let stopped = false;
  let watchdog: NodeJS.Timeout | undefined;

  const lose = (loss: LockLoss) => {
    if (lost !== undefined || stopped) return;
    lost = loss;
    clearInterval(ticker);
    clearTimeout(watchdog);
    onLost(loss);
  };

  /**
   * Others may take over staleAfterMs after the mtime last moved; the lock is given up a heartbeat
   * before that (timers run late under load, watchers poll): only a beat that answers keeps it.
   * A beat begun already past that point (after an event-loop stall, or failing beats) still gets a
   * heartbeat's time: a quick answer proves the lock ours, as it did before.
   */
  const watch = (started: number) => {
    const due = Math.max(lastBeat + staleAfterMs - heartbeatMs, started + heartbeatMs);
    const check = (dueAt: number) => {
      watchdog = setTimeout(() => {
        // Late by much: the event loop itself stalled (a long synchronous task), and an answer may be
        // waiting behind this timer. The beat gets another heartbeat with the loop running.
        if (now() - dueAt > heartbeatMs / 2) return check(now() + heartbeatMs);
        lose({ cause: 'unanswered', reason: `the file system has not answered its heartbeat for ${seconds(now() - started)} s` });
      }, dueAt - now());
      watchdog.unref();
    };
    check(due);
  };

  const tick = () => {
    if (pending !== undefined || lost !== undefined || stopped) return; // one in flight at most
    const started = now();
    pendingSince = started;
    watch(started);
    pending = beat()
      .then(
        (notOurs) => {
          if (stopped || lost !== undefined) return;
          if (notOurs === undefined) lastBeat = started;
          else lose({ cause: 'taken', reason: notOurs });
        },
        () => {
          // a passing I/O error (NFS): the next beat tries again, and others wait staleAfterMs before judging
        },
      )
      .finally(() => {
        clearTimeout(watchdog);
        pending = undefined;
      });
  };

  const ticker = setInterval(tick, heartbeatMs);
  ticker.unref();
  return {
    get lost() {
      return lost;
    },
    get pending() {
      return pending;
    },
    get waiting() {
      return pending ? now() - pendingSince : 0;
    },
    stop() {
      stopped = true;
      clearInterval(ticker);
      clearTimeout(watchdog);
    },
  };
}
