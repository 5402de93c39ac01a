/**
 * Introspection answers and revocations shared by all replicas of a service through Redis: the same
 * keys (SHA-256 of issuer ‖ token) and the same TTL rules as the local cache, plus a pub/sub channel
 * on which a revocation reaches every replica at once. Redis is an accelerator, never the authority:
 * when it is down every replica falls back to its own cache and the IdP, and whatever is read from
 * it counts only if it carries the service's tag (shared-seal.ts) — anything else that can write to
 * that Redis could otherwise log in as anyone. A Redis that stops answering but keeps its
 * connection open counts as down after a few timeouts (redis-stall-guard.ts): requests then skip it
 * at once instead of each waiting the command timeout, and nothing is left queued for when it wakes.
 *
 * Every replica writes the revocations it holds back to Redis every `writeBackMs`, besides after
 * each reconnect: a mark Redis lost without dropping a connection (evicted, deleted) or refused
 * (out of memory, read-only after a failover) reached no replica started later otherwise.
 */
import { clientSpan, type SpanParent } from '../telemetry/client-span.js';
import type { ChainableCommander, Redis } from 'ioredis';
import type { EventBus } from '../telemetry/events.js';
import type { Logger } from '../telemetry/logger.js';
import { withoutUrlCredentials } from '../net/url-credentials.js';
import type { SharedSeal } from './shared-seal.js';
import { MAX_REVOCATION_END_MS, MAX_REVOKED_TOKENS } from './token-denylist.js';
import { warnIfEvicting } from './redis-eviction.js';
import { createRedisStallGuard, GUARDED_CONNECTION, reconnectBackoff } from './redis-stall-guard.js';

/** A stored answer: the IdP's claims, when the IdP gave them (ms epoch), and how long Redis keeps them still. */
export type SharedAnswer = { claims: Record<string, unknown>; fetchedAt: number; ttlMs: number } | 'revoked' | undefined;

export interface SharedTokenState {
  get(hash: string, parent?: SpanParent): Promise<SharedAnswer>;
  /** Stores an active answer the IdP gave at `fetchedAt`, for `ttlMs` (fire and forget). */
  put(hash: string, claims: Record<string, unknown>, fetchedAt: number, ttlMs: number): void;
  /** Marks a token revoked for `ttlMs` (its remaining life) and tells every replica. */
  revoke(hash: string, ttlMs: number): Promise<void>;
  /**
   * Called for every revocation published by any replica (this one included), with the mark's end
   * (ms epoch); and, for every mark in Redis, when the listener is added and after each reconnect:
   * a replica that starts, or lost the channel for a while, learns the revocations it missed.
   * Before reading the marks, and every `writeBackMs`, the revocations `live` lists (this
   * sidecar's denylist) are written back where Redis lost them or never took them: a Redis
   * restarted empty forgot every revocation otherwise, and one that evicted or refused a mark
   * (without dropping the connection) kept it from every replica started later.
   */
  onRevoked(listener: (hash: string, untilMs: number) => void, live: () => Iterable<[string, number]>): Promise<void>;
  close(): Promise<void>;
}

/** How long start-up waits for Redis before going on without it (it connects in the background). */
const CONNECT_WAIT_MS = 1000;
/** Revocation marks read back (and written back) at most: as many as a denylist holds. */
const MAX_REPLAYED_MARKS = MAX_REVOKED_TOKENS;
/** Marks written back per round trip. */
const RESTORE_BATCH = 1000;
/** Entries that fail their tag are reported at most this often (with how many), not per request. */
const REJECTED_REPORT_MS = 10_000;

/** A prefix taken literally in a SCAN MATCH pattern. */
const escapeGlob = (s: string) => s.replace(/[*?[\]\\]/g, '\\$&');
/** The longest a shared introspection answer is kept (each is also capped by the cache's own rules). */
const MAX_TTL_MS = 24 * 3600_000;

/** The Redis key of a token's shared introspection answer (`hash`: tokenHash). */
export const sharedAnswerKey = (prefix: string, hash: string): string => `${prefix}tok:${hash}`;

/**
 * Runs a MULTI and fails with the first error Redis gave: the cause (OOM, READONLY) rather than
 * EXECABORT, and an error of a command at EXEC time too (ioredis resolves those).
 */
async function execOrThrow(tx: ChainableCommander): Promise<void> {
  let results: [Error | null, unknown][] | null;
  try {
    results = await tx.exec();
  } catch (err) {
    throw (err as { previousErrors?: Error[] }).previousErrors?.[0] ?? err;
  }
  for (const [err] of results ?? []) if (err) throw err;
}

export async function createRedisTokenState(options: {
  url: string;
  prefix: string;
  seal: SharedSeal;
  logger: Logger;
  events: EventBus;
  /** How often the revocations this replica holds are written back where Redis has no mark. */
  writeBackMs: number;
}): Promise<SharedTokenState> {
  const { Redis: RedisClient } = await import('ioredis');
  const { prefix, seal, logger, events } = options;
  const redis: Redis = new RedisClient(options.url, GUARDED_CONNECTION);
  const guard = createRedisStallGuard(redis);
  // The channel's connection queues its one command (SUBSCRIBE) until it is up, however long that
  // takes, and ioredis subscribes again after each reconnect.
  const subscriber: Redis = new RedisClient(options.url, {
    lazyConnect: true,
    retryStrategy: reconnectBackoff,
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

  // Entries without this service's tag: forged, another service's, or written by a replica on
  // another key (a key change rolling out). Ignored; reported once, then at most every 10 s.
  let rejected = 0;
  let reportedAt = -Infinity;
  const reject = (what: 'answer' | 'mark' | 'message') => {
    rejected++;
    const now = Date.now();
    if (now - reportedAt < REJECTED_REPORT_MS) return;
    reportedAt = now;
    events.emit('warden.token.shared_rejected', {
      'warden.rule': `shared.${what}`,
      'warden.count': rejected,
      'warden.detail': `entries in Redis under ${prefix} without this service's tag were ignored (tokens.shared.key)`,
    });
    rejected = 0;
  };

  let live: () => Iterable<[string, number]> = () => [];
  // This sidecar's revocations, written back where Redis has no mark of this service (a restart
  // without persistence empties it; an entry without the tag is as good as none). Those written
  // were lost, so they are published too, for replicas that read the marks before this wrote them.
  const restore = async (): Promise<number> => {
    let batch: [string, number][] = [];
    let taken = 0;
    let written = 0;
    const flush = async () => {
      const todo = batch;
      batch = [];
      if (todo.length === 0) return;
      const found = (await todo.reduce((p, [hash]) => p.get(revokedKey(hash)), redis.pipeline()).exec()) ?? [];
      const now = Date.now();
      const lost = todo.filter(([hash, until], i) => {
        const value = found[i]?.[1];
        return until - now >= 1 && !(typeof value === 'string' && seal.openMark(revokedKey(hash), value) !== undefined);
      });
      if (lost.length === 0) return;
      // A transaction: a mark and its message go together. A Redis that refuses writes (OOM,
      // READONLY) aborts it whole, and the next pass tries again; a pipeline published every lost
      // revocation at each pass while the marks were refused.
      await execOrThrow(
        lost.reduce((p, [hash, until]) => {
          // Bounded as the denylist bounds it: an end Redis refuses as an expiry failed the whole pass.
          const end = Math.min(Math.ceil(until), MAX_REVOCATION_END_MS);
          return p
            .set(revokedKey(hash), seal.sealMark(revokedKey(hash), end), 'PX', end - now)
            .publish(channel, seal.sealMessage(channel, hash, end));
        }, redis.multi()),
      );
      written += lost.length;
    };
    for (const entry of live()) {
      if (taken++ >= MAX_REPLAYED_MARKS) break;
      batch.push(entry);
      if (batch.length >= RESTORE_BATCH) await flush();
    }
    await flush();
    return written;
  };

  // The marks in Redis, read in pages (SCAN does not block Redis), at most MAX_REPLAYED_MARKS.
  const replay = async () => {
    let cursor = '0';
    let seen = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}rev:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      const values = (await keys.reduce((p, k) => p.get(k), redis.pipeline()).exec()) ?? [];
      const now = Date.now();
      keys.forEach((key, i) => {
        const [err, value] = values[i] ?? [];
        const hash = key.slice(prefix.length + 'rev:'.length);
        if (err || typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) return;
        // The end the writer signed, not the key's TTL: anyone can PEXPIRE a key.
        const until = seal.openMark(key, value);
        if (until === undefined) return reject('mark');
        if (until <= now) return;
        for (const l of listeners) l(hash, until);
      });
      seen += keys.length;
    } while (cursor !== '0' && seen < MAX_REPLAYED_MARKS);
  };

  // One pass at a time; one asked for during a pass runs after it. A reconnect's pass writes back
  // and reads the marks; the timer's only writes back (reading every mark each period is not needed:
  // the channel brings what others write while connected).
  let running: Promise<void> | undefined;
  let wantRestore = false;
  let wantReplay = false;
  const sync = (andReplay: boolean): Promise<void> => {
    if (listeners.length === 0) return Promise.resolve();
    wantRestore = true;
    wantReplay ||= andReplay;
    if (running) return running;
    running = (async () => {
      while (wantRestore) {
        const replaying = wantReplay;
        wantRestore = wantReplay = false;
        try {
          const written = await restore();
          if (written > 0) {
            logger.info(
              { count: written, redis: withoutUrlCredentials(options.url) },
              'shared token state: wrote revocations back to Redis (it had lost them, or refused them when they were made)',
            );
          }
        } catch (err) {
          warn(err, 'writing the revocations back');
        }
        // Whether or not the write-back went through: a write Redis refuses (one bad entry, OOM,
        // READONLY) kept this replica from reading every revocation it missed while disconnected.
        if (replaying) await replay().catch((err: unknown) => warn(err, 'reading the revocation marks'));
      }
    })().finally(() => (running = undefined));
    return running;
  };
  const resync = () => sync(true);
  // Timers only: nothing of this is on a request's path. Skipped while disconnected (the reconnect
  // writes back anyway).
  const writeBack = setInterval(() => redis.status === 'ready' && void sync(false), options.writeBackMs).unref();
  // After a reconnect of either connection (the channel's messages of the gap are lost, and Redis
  // may have come back empty); the command connection must be up, so whichever comes back last runs.
  let connected = false;
  for (const client of [redis, subscriber]) client.on('ready', () => connected && redis.status === 'ready' && void resync());
  // Once: whether this Redis may evict the marks (read again after a reconnect until it says).
  let policyRead = false;
  redis.on('ready', () => {
    if (policyRead) return;
    void warnIfEvicting(redis, logger, { redis: withoutUrlCredentials(options.url) }).then((read) => (policyRead ||= read));
  });

  subscriber.on('message', (ch: string, message: string) => {
    if (ch !== channel) return;
    const m = seal.openMessage(channel, message);
    if (!m) return reject('message');
    for (const l of listeners) l(m.hash, m.untilMs);
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
        const [revoked, answer, ttl] = await guard.run(async () => {
          const results =
            (await clientSpan('redis token state', { 'db.system': 'redis' }, parent, () =>
              redis.pipeline().get(revokedKey(hash)).get(answerKey(hash)).pttl(answerKey(hash)).exec(),
            )) ?? [];
          // A command's failure (its timeout) fails the whole read, and counts towards the guard.
          return results.map(([err, value]) => {
            if (err) throw err;
            return value;
          });
        });
        if (typeof revoked === 'string') {
          if (seal.openMark(revokedKey(hash), revoked) !== undefined) return 'revoked';
          reject('mark');
        }
        if (typeof answer !== 'string' || typeof ttl !== 'number' || ttl <= 0) return undefined;
        const opened = seal.openAnswer(answerKey(hash), answer);
        if (!opened) {
          reject('answer');
          return undefined;
        }
        return { ...opened, ttlMs: ttl };
      } catch (err) {
        warn(err, 'read');
        return undefined;
      }
    },
    put(hash, claims, fetchedAt, ttlMs) {
      if (ttlMs <= 0) return;
      guard
        .run(() =>
          redis.set(answerKey(hash), seal.sealAnswer(answerKey(hash), claims, fetchedAt), 'PX', Math.min(Math.ceil(ttlMs), MAX_TTL_MS)),
        )
        .catch((err: unknown) => warn(err, 'write'));
    },
    async revoke(hash, ttlMs) {
      // As long as the token lives, however long: a mark capped at a day let every other replica,
      // and any started later, accept a week-long token again after that day. Bounded only where
      // Redis would refuse the expiry (and the message's 16 digits) would not hold it.
      const now = Date.now();
      const ttl = Math.max(1000, Math.min(Math.ceil(ttlMs), MAX_REVOCATION_END_MS - now));
      const until = now + ttl;
      // A failure is the caller's to report (not throttled); the denylist keeps the revocation and
      // the write-back stores it once Redis takes writes again.
      await guard.run(() =>
        execOrThrow(
          redis
            .multi()
            .set(revokedKey(hash), seal.sealMark(revokedKey(hash), until), 'PX', ttl)
            .del(answerKey(hash))
            .publish(channel, seal.sealMessage(channel, hash, until)),
        ),
      );
    },
    async onRevoked(listener, liveRevocations) {
      listeners.push(listener);
      live = liveRevocations;
      await resync();
    },
    async close() {
      clearInterval(writeBack);
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}
