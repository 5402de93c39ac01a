/**
 * Rate-limit state shared by all replicas in Redis: the same GCRA as the memory store, run as one
 * Lua script (atomic, with Redis's own clock, so replicas with skewed clocks agree). Commands fail
 * fast while Redis is away; the caller applies the configured policy (fail-open to a local limiter,
 * or fail-closed).
 *
 * A Redis that stops answering but keeps its connection open is away too: redis-stall-guard.ts
 * gives it up after a few timeouts, so requests are decided at once without it (no command sent)
 * and nothing queued on the stalled connection runs when it wakes.
 */
import { clientSpan } from '../telemetry/client-span.js';
import type { Redis } from 'ioredis';
import { createRedisStallGuard, GUARDED_CONNECTION, RedisStalledError } from '../identity/redis-stall-guard.js';
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
if tat > now + burstOffset + tonumber(ARGV[4]) then
  tat = now + burstOffset
  redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.ceil(burstOffset) + 1)
end
local newTat = tat + interval * tonumber(ARGV[3])
local allowAt = newTat - burstOffset
if now < allowAt - tonumber(ARGV[4]) then
  return {0, string.format('%.17g', allowAt - now), string.format('%.17g', tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.17g', newTat), 'PX', math.ceil(newTat - now) + 1)
return {1, string.format('%.17g', newTat - now), '0'}
`;

export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`rate-limit store unavailable: ${(cause as Error).message}`, { cause });
    this.name = 'StoreUnavailableError';
  }
}

type GcraRedis = Redis & {
  wardenGcra(key: string, interval: string, offset: string, cost: string, tolerance: string): Promise<[number, string, string]>;
};

/** `connected`: whether commands can be sent now (while not, each fails at once: no offline queue). */
export async function createRedisLimiter(url: string, prefix: string): Promise<Limiter & { connected(): boolean }> {
  const { Redis: RedisClient } = await import('ioredis');
  const redis = new RedisClient(url, GUARDED_CONNECTION) as GcraRedis;
  // Reported per request through the policy, not per reconnect attempt; but the reason is kept: a
  // refused password otherwise surfaced only as "Stream isn't writeable".
  let connectionError: string | undefined;
  redis.on('error', (err: Error) => (connectionError = err.message));
  redis.defineCommand('wardenGcra', { numberOfKeys: 1, lua: GCRA_LUA });
  await redis.connect().catch(() => undefined);
  redis.on('ready', () => (connectionError = undefined));
  const guard = createRedisStallGuard(redis, () => connectionError);

  return {
    connected: () => redis.status === 'ready',
    async take(key, bucket, request): Promise<Decision> {
      let reply: unknown;
      try {
        reply = await guard.run(() =>
          clientSpan('redis EVALSHA gcra', { 'db.system': 'redis' }, request?.traceContext, () =>
            redis.wardenGcra(prefix + key, String(bucket.interval), String(bucket.burstOffset), String(bucket.cost), String(EPSILON_MS)),
          ),
        );
      } catch (err) {
        if (err instanceof RedisStalledError || connectionError === undefined) throw new StoreUnavailableError(err);
        throw new StoreUnavailableError(new Error(`${(err as Error).message} (connection: ${connectionError})`, { cause: err }));
      }
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
