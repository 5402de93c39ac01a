/**
 * The rate-limit store in force and its failure policy. With Redis, every replica shares one bucket
 * per client × route; when Redis cannot be asked, `fail-open` limits with this sidecar's memory
 * (so a Redis outage never removes limiting altogether) and `fail-closed` refuses with 503. Either
 * way `warden.ratelimit.store_unavailable` is raised (at most every 10 s while it lasts, in fail-open),
 * with the id of the request that found the store gone, so that the event lands on its trace.
 *
 * A bound that only tightens is never lifted by an outage: failed authentications are charged to
 * this sidecar's memory (`takeLocal`) when the store cannot say, whatever the policy. Under
 * fail-closed a 401 charged nothing, and junk tokens reached the IdP without bound while Redis was
 * down (30 of 30, against 5 with it up).
 */
import type { RateLimitsConfig } from '../config/types.js';
import type { EventBus } from '../telemetry/events.js';
import type { Bucket, Decision } from './gcra.js';
import { createMemoryLimiter, type MemoryLimiter, type TakeRequest } from './memory-limiter.js';
import { createRedisLimiter, StoreUnavailableError } from './redis-limiter.js';

/**
 * `unavailable`: the shared store could not be asked and the policy is fail-closed. A decision with
 * `local` set: it could not be asked and this sidecar's memory decided (fail-open).
 */
export type Take = (Decision & { readonly local?: true }) | 'unavailable';

export interface RateLimitRuntime {
  take(key: string, bucket: Bucket, request?: TakeRequest): Take | Promise<Take>;
  /** This sidecar's memory alone: where a charge goes that must not wait for the shared store to be back. */
  takeLocal(key: string, bucket: Bucket): Decision;
  /**
   * Fail-closed, and the shared store not connected: every `take` answers `unavailable` at once
   * (commands are not queued while it is away), so a request may be refused before it costs more.
   */
  storeDown(): boolean;
  close(): Promise<void>;
}

const EVENT_INTERVAL_MS = 10_000;

const locally = (decision: Decision): Take => ({ ...decision, local: true });

/** The memory store: this sidecar's buckets, which no outage takes away. */
export function createMemoryRateLimitRuntime(maxKeys: number): RateLimitRuntime {
  return memoryRuntimeOf(createMemoryLimiter(maxKeys));
}

function memoryRuntimeOf(local: MemoryLimiter): RateLimitRuntime {
  const take = (key: string, bucket: Bucket) => local.take(key, bucket);
  return { take, takeLocal: take, storeDown: () => false, close: () => local.close() };
}

/** `prefix` is the one in force (rateLimitPrefixOf): the configured one, or one naming the service. */
export async function createRateLimitRuntime(
  cfg: RateLimitsConfig & { prefix: string },
  deps: { events: EventBus },
): Promise<RateLimitRuntime> {
  const local = createMemoryLimiter(cfg.max_keys);
  if (cfg.store === 'memory' || !cfg.redis) return memoryRuntimeOf(local);
  const shared = await createRedisLimiter(cfg.redis, cfg.prefix);
  const failClosed = cfg.on_store_failure === 'fail-closed';
  let reportedAt = 0;

  const onFailure = (err: StoreUnavailableError, key: string, bucket: Bucket, request: TakeRequest | undefined): Take | Promise<Take> => {
    const now = Date.now();
    if (!failClosed && now - reportedAt >= EVENT_INTERVAL_MS) {
      reportedAt = now;
      deps.events.emit(
        'warden.ratelimit.store_unavailable',
        {
          'warden.action': 'detect',
          'warden.detail': `${err.message}; limiting with this sidecar's memory until it is back`,
        },
        request,
      );
    }
    if (failClosed) return 'unavailable';
    return locally(local.take(key, bucket));
  };

  return {
    take(key, bucket, request) {
      return (shared.take(key, bucket, request) as Promise<Decision>).catch((err: unknown) => {
        if (err instanceof StoreUnavailableError) return onFailure(err, key, bucket, request);
        throw err;
      });
    },
    takeLocal: (key, bucket) => local.take(key, bucket),
    storeDown: () => failClosed && !shared.connected(),
    async close() {
      await shared.close();
    },
  };
}
