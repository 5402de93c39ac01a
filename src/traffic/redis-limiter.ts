/**
 * Rate-limit state shared by all replicas in Redis: the same GCRA as the memory store, run as one
 * Lua script (atomic, with Redis's own clock, so replicas with skewed clocks agree). Commands fail
 * fast while Redis is away; the caller applies the configured policy (fail-open to a local limiter,
 * or fail-closed).
 *
 * A Redis that stops answering but keeps its connection open (paused, swapping, a stuck replica
 * failover) is away too: a command times out after 250 ms, but ioredis keeps it queued on the
 * connection, so each request paid 250 ms for as long as it lasted and every script ran once Redis
 * woke, long after the request was decided without it. So after BREAKER_FAILURES failures in a row
 * (FAILURE_SPACING_MS apart) the store counts as down: requests are decided at once without it (no
 * command sent), and the connection is dropped, which fails its queue and reconnects. ioredis's
 * ready check on the new connection is the probe (its answer closes the breaker); meanwhile one
 * request's command per BREAKER_OPEN_MS tries the store. And at most MAX_PENDING commands ever
 * wait for an answer: past it the store is unavailable for that request.
 */
import { clientSpan } from '../telemetry/client-span.js';
import type { Redis } from 'ioredis';
import { createCircuitBreaker } from '../identity/circuit-breaker.js';
import { decisionAfter, EPSILON_MS, type Decision } from './gcra.js';
import type { Limiter } from './memory-limiter.js';

// KEYS[1] = bucket key; ARGV = interval ms, burst offset ms, cost, tolerance ms (gcra.ts EPSILON_MS).
// Returns {allowed, ms, ms} as strings so fractions survive (Lua numbers become integers in
// replies), written with 17 digits: tostring's 14 rounded an epoch-ms TAT to 0.1 ms, a tenth of a
// token at 10 000/s lost or gained per request.
const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burstOffset = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local newTat = tat + interval * tonumber(ARGV[3])
local allowAt = newTat - burstOffset
if now < allowAt - tonumber(ARGV[4]) then
  return {0, string.format('%.17g', allowAt - now), string.format('%.17g', tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.17g', newTat), 'PX', math.ceil(newTat - now) + 1)
return {1, string.format('%.17g', newTat - now), '0'}
`;

/** Failed commands in a row (timeouts, mostly) after which the store counts as down. */
export const BREAKER_FAILURES = 3;
/**
 * Failures closer together than this count once towards BREAKER_FAILURES: when this process's
 * event loop is held up (a long GC, CPU starvation), every pending command's timer fires at once
 * on waking, though Redis may have answered — that is one failure, not one per command.
 */
export const FAILURE_SPACING_MS = 100;
/** How long it then counts as down before one request's command tries it again. */
export const BREAKER_OPEN_MS = 1000;
/**
 * Commands waiting for an answer at most. A healthy Redis answers in about a millisecond, so this
 * many pending means it is not answering: each one held memory until it did (about 2.5 KB).
 */
export const MAX_PENDING = 1024;

export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`rate-limit store unavailable: ${(cause as Error).message}`, { cause });
    this.name = 'StoreUnavailableError';
  }
}

type GcraRedis = Redis & {
  wardenGcra(key: string, interval: string, offset: string, cost: string, tolerance: string): Promise<[number, string, string]>;
};

export async function createRedisLimiter(url: string, prefix: string): Promise<Limiter> {
  const { Redis: RedisClient } = await import('ioredis');
  const redis = new RedisClient(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 250,
    // Dropping a stalled connection must fail what was queued on it, not send it again.
    autoResendUnfulfilledCommands: false,
    disconnectTimeout: 250,
    lazyConnect: true,
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
  }) as GcraRedis;
  // Reported per request through the policy, not per reconnect attempt; but the reason is kept: a
  // refused password otherwise surfaced only as "Stream isn't writeable".
  let connectionError: string | undefined;
  redis.on('error', (err: Error) => (connectionError = err.message));
  redis.defineCommand('wardenGcra', { numberOfKeys: 1, lua: GCRA_LUA });
  await redis.connect().catch(() => undefined);
  const breaker = createCircuitBreaker({ failures: BREAKER_FAILURES, openFor: BREAKER_OPEN_MS });
  // A new connection is ready once Redis has answered its ready check (INFO): the probe has passed.
  redis.on('ready', () => {
    connectionError = undefined;
    breaker.success();
  });
  let pending = 0;
  let breakerReason = '';
  let countedAt = -Infinity;

  const failed = (err: unknown): never => {
    const now = Date.now();
    // Always when open or half-open: a failed trial must re-open it (and end its trial).
    if (breaker.state !== 'closed' || now - countedAt >= FAILURE_SPACING_MS) {
      countedAt = now;
      breaker.failure();
    }
    if (breaker.state === 'open' && redis.status === 'ready') {
      breakerReason = (err as Error).message;
      // Still "ready" but not answering: drop the connection, which fails what is queued on it.
      redis.disconnect(true);
    }
    if (connectionError === undefined) throw new StoreUnavailableError(err);
    throw new StoreUnavailableError(new Error(`${(err as Error).message} (connection: ${connectionError})`, { cause: err }));
  };

  return {
    async take(key, bucket, request): Promise<Decision> {
      // Before the breaker: a half-open breaker's allow() is its one trial, which must then be sent.
      if (pending >= MAX_PENDING) throw new StoreUnavailableError(new Error(`${pending} commands already waiting for an answer`));
      if (!breaker.allow()) {
        throw new StoreUnavailableError(
          new Error(`not answering (${breakerReason || connectionError || 'commands failed'}); retried shortly`),
        );
      }
      let reply: unknown;
      pending++;
      try {
        reply = await clientSpan('redis EVALSHA gcra', { 'db.system': 'redis' }, request?.traceContext, () =>
          redis.wardenGcra(prefix + key, String(bucket.interval), String(bucket.burstOffset), String(bucket.cost), String(EPSILON_MS)),
        );
      } catch (err) {
        return failed(err);
      } finally {
        pending--;
      }
      breaker.success();
      // Anything but the script's answer is a store that cannot be trusted: the configured policy
      // applies (a nil or a string used to give 500, or a 429 with Retry-After: NaN).
      if (!isGcraReply(reply)) throw new StoreUnavailableError(new Error(`unexpected reply ${JSON.stringify(reply)?.slice(0, 80)}`));
      const [allowed, a, b] = reply;
      if (allowed === 1) return decisionAfter(bucket, Number(a));
      return { allowed: false, remaining: 0, retryAfterMs: Number(a), resetMs: Number(b) };
    },
    async close() {
      redis.disconnect();
    },
  };
}

/** The GCRA script's answer: [1 | 0, a number, a number] (strings or integers, as Redis returns them). */
function isGcraReply(reply: unknown): reply is [number, string, string] {
  return (
    Array.isArray(reply) &&
    reply.length === 3 &&
    (reply[0] === 0 || reply[0] === 1) &&
    Number.isFinite(Number(reply[1])) &&
    Number.isFinite(Number(reply[2])) &&
    reply[1] !== null &&
    reply[2] !== null
  );
}
