/**
 * Whether a Redis may evict the revocation marks. A mark has a TTL and is never read again once
 * the replicas have it, so under an LRU, LFU or TTL policy it is among the first keys to go when
 * the Redis fills up (managed Redis often sets `allkeys-lru` or `volatile-lru`): a replica started
 * afterwards accepts the revoked token until a running replica writes the mark back. Read from
 * `INFO memory`, which managed Redis allows where it may forbid `CONFIG GET`.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../telemetry/logger.js';

/** The policy and cap from an `INFO memory` answer; undefined when it does not say. */
export function memoryPolicyOf(info: string): { policy: string; maxmemory: number } | undefined {
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  if (policy === undefined) return undefined;
  return { policy, maxmemory: Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0) };
}

/**
 * Reads the policy and warns when it evicts (anything but `noeviction`). True once it has been
 * read (warned or not); false when Redis did not tell (INFO refused or renamed): try again later.
 */
export async function warnIfEvicting(redis: Redis, logger: Logger, fields: Record<string, unknown>): Promise<boolean> {
  let found: ReturnType<typeof memoryPolicyOf>;
  try {
    found = memoryPolicyOf(await redis.info('memory'));
  } catch {
    return false;
  }
  if (!found) return false;
  if (found.policy !== 'noeviction') {
    logger.warn(
      { ...fields, maxmemory_policy: found.policy, maxmemory: found.maxmemory },
      `shared token state: Redis evicts keys when full (maxmemory-policy ${found.policy}): revocation marks may be evicted ` +
        'first, and a replica started before a running one writes the mark back (tokens.shared.write_back) accepts the ' +
        'revoked token; give tokens.shared a Redis of its own, or maxmemory-policy noeviction',
    );
  }
  return true;
}
