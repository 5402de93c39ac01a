/**
 * A guard around the commands a request sends to Redis (the rate-limit store, the shared token
 * state): a Redis that stops answering but keeps its connection open (paused, swapping, a stuck
 * replica failover) must cost requests nothing, as one that is down does.
 *
 * Without it, a command timed out after its `commandTimeout`, but ioredis kept it queued on the
 * connection: each request paid the timeout for as long as the stall lasted, and every command ran
 * once Redis woke, long after the request was decided without it. So after BREAKER_FAILURES
 * failures in a row (FAILURE_SPACING_MS apart) Redis counts as stalled: commands are refused at
 * once (none sent), and the connection is dropped, which fails its queue and reconnects. ioredis's
 * ready check on the new connection is the probe (its answer closes the breaker); meanwhile one
 * command per BREAKER_OPEN_MS tries it. And at most MAX_PENDING commands ever wait for an answer.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { createCircuitBreaker } from './circuit-breaker.js';

/** How long a request's command may wait for Redis. */
export const COMMAND_TIMEOUT_MS = 250;

/** Reconnection backoff: 200 ms more per attempt, at most 2 s. */
export const reconnectBackoff = (times: number): number => Math.min(times * 200, 2000);

/**
 * The options of a connection whose commands go through the guard: they fail at once while it is
 * down (a request never waits for Redis to come back), time out after COMMAND_TIMEOUT_MS, and are
 * not sent again once the guard has dropped a stalled connection (its queue fails instead).
 */
export const GUARDED_CONNECTION: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: COMMAND_TIMEOUT_MS,
  autoResendUnfulfilledCommands: false,
  disconnectTimeout: COMMAND_TIMEOUT_MS,
  lazyConnect: true,
  retryStrategy: reconnectBackoff,
};

/** Failed commands in a row (timeouts, mostly) after which Redis counts as stalled. */
export const BREAKER_FAILURES = 3;
/**
 * Failures closer together than this count once towards BREAKER_FAILURES: when this process's
 * event loop is held up (a long GC, CPU starvation), every pending command's timer fires at once
 * on waking, though Redis may have answered — that is one failure, not one per command.
 */
export const FAILURE_SPACING_MS = 100;
/** How long it then counts as stalled before one command tries it again. */
export const BREAKER_OPEN_MS = 1000;
/**
 * Commands waiting for an answer at most. A healthy Redis answers in about a millisecond, so this
 * many pending means it is not answering: each one held memory until it did (about 2.5 KB).
 */
export const MAX_PENDING = 1024;

/** A command refused without being sent: Redis counts as stalled, or too many already wait. */
export class RedisStalledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisStalledError';
  }
}

export interface RedisStallGuard {
  /** Sends one command (or pipeline) through the guard: refused at once while Redis counts as stalled. */
  run<T>(command: () => Promise<T>): Promise<T>;
}

/** `lastError`: the connection's last error, named in refusals (a refused password, say). */
export function createRedisStallGuard(redis: Redis, lastError: () => string | undefined = () => undefined): RedisStallGuard {
  const breaker = createCircuitBreaker({ failures: BREAKER_FAILURES, openFor: BREAKER_OPEN_MS });
  // A new connection is ready once Redis has answered its ready check (INFO): the probe has passed.
  redis.on('ready', () => breaker.success());
  let pending = 0;
  let reason = '';
  let countedAt = -Infinity;

  const failed = (err: unknown) => {
    // An error Redis answered with (WRONGTYPE for a key of another type, LOADING) is an answer:
    // Redis is not stalled, and the request's own policy handles it.
    if ((err as Error | undefined)?.name === 'ReplyError') return breaker.success();
    const now = Date.now();
    // Always when open or half-open: a failed trial must re-open it (and end its trial).
    if (breaker.state !== 'closed' || now - countedAt >= FAILURE_SPACING_MS) {
      countedAt = now;
      breaker.failure();
    }
    if (breaker.state === 'open' && redis.status === 'ready') {
      reason = (err as Error).message;
      // Still "ready" but not answering: drop the connection, which fails what is queued on it.
      redis.disconnect(true);
    }
  };

  return {
    async run(command) {
      // Before the breaker: a half-open breaker's allow() is its one trial, which must then be sent.
      if (pending >= MAX_PENDING) throw new RedisStalledError(`${pending} commands already waiting for an answer`);
      if (!breaker.allow()) throw new RedisStalledError(`not answering (${reason || lastError() || 'commands failed'}); retried shortly`);
      pending++;
      try {
        const answer = await command();
        breaker.success();
        return answer;
      } catch (err) {
        failed(err);
        throw err;
      } finally {
        pending--;
      }
    },
  };
}
