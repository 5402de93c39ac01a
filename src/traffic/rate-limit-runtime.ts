/**
 * The rate-limit store in force and its failure policy. With Redis, every replica shares one bucket
 * per client × route; when Redis cannot be asked, `fail-open` limits with this sidecar's memory
 * (so a Redis outage never removes limiting altogether) and `fail-closed` refuses with 503. Either
 * way `warden.ratelimit.store_unavailable` is raised (at most every 10 s while it lasts, in fail-open),
 * with the id of the request that found the store gone, so that the event lands on its trace.
 */
import type { RateLimitsConfig } from '../config/types.js';
import type { EventBus } from '../telemetry/events.js';
import type { Bucket, Decision } from './gcra.js';
import { createMemoryLimiter, type Limiter, type TakeRequest } from './memory-limiter.js';
import { createRedisLimiter, StoreUnavailableError } from './redis-limiter.js';

/**
 * `unavailable`: the shared store could not be asked and the policy is fail-closed. A decision with
 * `local` set: it could not be asked and this sidecar's memory decided (fail-open).
 */
export type Take = (Decision & { readonly local?: true }) | 'unavailable';

export interface RateLimitRuntime {
  take(key: string, bucket: Bucket, request?: TakeRequest): Take | Promise<Take>;
  close(): Promise<void>;
}

const EVENT_INTERVAL_MS = 10_000;

const locally = (decision: Decision): Take => ({ ...decision, local: true });

/** `prefix` is the one in force (rateLimitPrefixOf): the configured one, or one naming the service. */
export async function createRateLimitRuntime(
  cfg: RateLimitsConfig & { prefix: string },
  deps: { events: EventBus },
): Promise<RateLimitRuntime> {
  const local = createMemoryLimiter(cfg.max_keys);
  if (cfg.store === 'memory' || !cfg.redis) return local;
  const shared: Limiter = await createRedisLimiter(cfg.redis, cfg.prefix);
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
    const decided = local.take(key, bucket);
    return decided instanceof Promise ? decided.then(locally) : locally(decided);
  };

  return {
    take(key, bucket, request) {
      return (shared.take(key, bucket, request) as Promise<Decision>).catch((err: unknown) => {
        if (err instanceof StoreUnavailableError) return onFailure(err, key, bucket, request);
        throw err;
      });
    },
    async close() {
      await shared.close();
    },
  };
}
