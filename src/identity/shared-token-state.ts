/**
 * Introspection answers and revocations shared by all replicas of a service through Redis: the same
 * keys (SHA-256 of issuer ‖ token) and the same TTL rules as the local cache, plus a pub/sub channel
 * on which a revocation reaches every replica at once. Redis is an accelerator, never the authority:
 * when it is down every replica falls back to its own cache and the IdP.
 */
import { clientSpan, type SpanParent } from '../telemetry/client-span.js';
import type { Redis } from 'ioredis';
import type { Logger } from '../telemetry/logger.js';
import { withoutUrlCredentials } from '../net/url-credentials.js';
import { MAX_REVOKED_TOKENS } from './token-denylist.js';

export type SharedAnswer = { claims: Record<string, unknown>; ttlMs: number } | 'revoked' | undefined;

export interface SharedTokenState {
  get(hash: string, parent?: SpanParent): Promise<SharedAnswer>;
  /** Stores an active answer for `ttlMs` (fire and forget). */
  put(hash: string, claims: Record<string, unknown>, ttlMs: number): void;
  /** Marks a token revoked for `ttlMs` (its remaining life) and tells every replica. */
  revoke(hash: string, ttlMs: number): Promise<void>;
  /**
   * Called for every revocation published by any replica (this one included), with the mark's end
   * (ms epoch); and, for every mark in Redis, when the listener is added and after each reconnect:
   * a replica that starts, or lost the channel for a while, learns the revocations it missed.
   */
  onRevoked(listener: (hash: string, untilMs: number) => void): Promise<void>;
  close(): Promise<void>;
}

const COMMAND_TIMEOUT_MS = 250;
/** How long start-up waits for Redis before going on without it (it connects in the background). */
const CONNECT_WAIT_MS = 1000;
/** Revocation marks read back at most: as many as a denylist holds. */
const MAX_REPLAYED_MARKS = MAX_REVOKED_TOKENS;

/** A prefix taken literally in a SCAN MATCH pattern. */
const escapeGlob = (s: string) => s.replace(/[*?[\]\\]/g, '\\$&');
/** The longest a shared introspection answer is kept (each is also capped by the cache's own rules). */
const MAX_TTL_MS = 24 * 3600_000;

/** The Redis key of a token's shared introspection answer (`hash`: tokenHash). */
export const sharedAnswerKey = (prefix: string, hash: string): string => `${prefix}tok:${hash}`;

export async function createRedisTokenState(options: { url: string; prefix: string; logger: Logger }): Promise<SharedTokenState> {
  const { Redis: RedisClient } = await import('ioredis');
  const { prefix, logger } = options;
  const common = {
    // Commands fail at once while disconnected: a request never waits for Redis to come back.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    lazyConnect: true,
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
  };
  const redis: Redis = new RedisClient(options.url, common);
  // The channel's connection queues its one command (SUBSCRIBE) until it is up, however long that
  // takes, and ioredis subscribes again after each reconnect.
  const subscriber: Redis = new RedisClient(options.url, {
    ...common,
    commandTimeout: undefined,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
  });
  const channel = `${prefix}revocations`;
  const answerKey = (hash: string) => sharedAnswerKey(prefix, hash);
  const revokedKey = (hash: string) => `${prefix}rev:${hash}`;
  const listeners: ((hash: string, untilMs: number) => void)[] = [];

  let warnedAt = 0;
  const warn = (err: unknown, what: string) => {
    // One line per 10 s at most: a Redis outage must not flood the log at request rate.
    if (Date.now() - warnedAt < 10_000) return;
    warnedAt = Date.now();
    logger.warn(
      { err: (err as Error).message, redis: withoutUrlCredentials(options.url) },
      `shared token state: ${what} failed; using the local cache and the IdP`,
    );
  };
  for (const client of [redis, subscriber]) client.on('error', (err) => warn(err, 'connection'));

  // The marks in Redis, read in pages (SCAN does not block Redis), at most MAX_REPLAYED_MARKS.
  const replay = async () => {
    if (listeners.length === 0) return;
    try {
      let cursor = '0';
      let seen = 0;
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}rev:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length === 0) continue;
        const ttls = (await keys.reduce((p, k) => p.pttl(k), redis.pipeline()).exec()) ?? [];
        const now = Date.now();
        keys.forEach((key, i) => {
          const [err, ttl] = ttls[i] ?? [];
          const hash = key.slice(prefix.length + 'rev:'.length);
          if (err || typeof ttl !== 'number' || ttl <= 0 || !/^[0-9a-f]{64}$/.test(hash)) return;
          for (const l of listeners) l(hash, now + ttl);
        });
        seen += keys.length;
      } while (cursor !== '0' && seen < MAX_REPLAYED_MARKS);
    } catch (err) {
      warn(err, 'reading the revocation marks');
    }
  };
  // After a reconnect of either connection (the channel's messages of the gap are lost); the
  // command connection must be up to read, so whichever comes back last reads.
  let connected = false;
  for (const client of [redis, subscriber]) client.on('ready', () => connected && redis.status === 'ready' && void replay());

  subscriber.on('message', (ch: string, message: string) => {
    const m = /^([0-9a-f]{64}) (\d{1,16})$/.exec(message);
    if (ch !== channel || !m) return;
    for (const l of listeners) l(m[1] as string, Number(m[2]));
  });
  // Subscribed whether or not this first connect succeeds: a replica started while Redis was down
  // never subscribed (ioredis resubscribes only to channels it had), so revocations published
  // later never reached it. Start-up waits for Redis at most CONNECT_WAIT_MS: a Redis that accepts
  // and never answers held the sidecar (and any reload changing `tokens`) for good.
  const connecting = Promise.allSettled([redis.connect(), subscriber.connect()]);
  subscriber.subscribe(channel).catch((err: unknown) => warn(err, 'subscribing to revocations'));
  await Promise.race([connecting, new Promise((r) => setTimeout(r, CONNECT_WAIT_MS).unref())]);
  connected = true;

  return {
    async get(hash, parent) {
      try {
        // One round trip: the answer, its remaining life and the revocation mark.
        const results =
          (await clientSpan('redis token state', { 'db.system': 'redis' }, parent, () =>
            redis.pipeline().exists(revokedKey(hash)).get(answerKey(hash)).pttl(answerKey(hash)).exec(),
          )) ?? [];
        const [revoked, answer, ttl] = results.map(([err, value]) => {
          if (err) throw err;
          return value;
        });
        if (revoked === 1) return 'revoked';
        if (typeof answer !== 'string' || typeof ttl !== 'number' || ttl <= 0) return undefined;
        return { claims: JSON.parse(answer) as Record<string, unknown>, ttlMs: ttl };
      } catch (err) {
        warn(err, 'read');
        return undefined;
      }
    },
    put(hash, claims, ttlMs) {
      if (ttlMs <= 0) return;
      redis
        .set(answerKey(hash), JSON.stringify(claims), 'PX', Math.min(Math.ceil(ttlMs), MAX_TTL_MS))
        .catch((err: unknown) => warn(err, 'write'));
    },
    async revoke(hash, ttlMs) {
      // As long as the token lives, however long: a mark capped at a day let every other replica,
      // and any started later, accept a week-long token again after that day. Bounded only where
      // Redis would refuse the expiry (and the message's 16 digits) would not hold it.
      const ttl = Math.max(1000, Math.min(Math.ceil(ttlMs), Number.MAX_SAFE_INTEGER - Date.now()));
      try {
        await redis
          .multi()
          .set(revokedKey(hash), '1', 'PX', ttl)
          .del(answerKey(hash))
          .publish(channel, `${hash} ${Date.now() + ttl}`)
          .exec();
      } catch (err) {
        warn(err, 'revocation');
        throw err;
      }
    },
    async onRevoked(listener) {
      listeners.push(listener);
      await replay();
    },
    async close() {
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}
