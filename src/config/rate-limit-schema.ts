/** JSON Schema of sidecar.yaml's `rate_limits` section and of a route's `rate_limit`. */
import { duration, MAX_TIMER_MS, positiveInt } from './schema-parts.js';

/**
 * Why a bucket can never allow a request, or undefined: it holds at most `burst` tokens (default
 * `rate`), so a request costing more is refused forever, with a Retry-After that never comes true.
 * For sidecar.yaml's buckets and x-warden-rate-limit alike (a schema cannot compare two fields).
 */
export function costProblem(bucket: { rate: number; burst?: number | undefined; cost?: number | undefined }): string | undefined {
  const burst = bucket.burst ?? bucket.rate;
  return (bucket.cost ?? 1) > burst
    ? `must be at most the bucket's size, burst (${burst}): a request costing more is never allowed`
    : undefined;
}

export const bucketSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['rate'],
  'x-expect': 'a token bucket: { rate: 100, per: 1s, burst: 200, cost: 1 }',
  properties: {
    rate: { type: 'integer', minimum: 1, maximum: 1_000_000_000, 'x-expect': 'tokens added per period, an integer ≥ 1' },
    per: duration('1s'),
    burst: { type: 'integer', minimum: 1, maximum: 1_000_000_000, 'x-expect': 'the bucket size, an integer ≥ 1 (default: rate)' },
    cost: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1, 'x-expect': 'tokens a request takes, an integer ≥ 1' },
  },
} as const;

/** The same bucket inside anyOf, where ajv applies no defaults: `per` and `cost` default in bucketOf. */
const routeBucket = {
  ...bucketSchema,
  properties: {
    ...bucketSchema.properties,
    per: { 'x-duration': MAX_TIMER_MS, 'x-expect': 'a duration like "1s" or "1m" (default 1s), up to 596h' },
    cost: { type: 'integer', minimum: 1, maximum: 1_000_000, 'x-expect': 'tokens a request takes, an integer ≥ 1 (default 1)' },
  },
} as const;

export const routeRateLimit = {
  'x-expect': 'a token bucket { rate, per, burst, cost } or false (no limit on this route)',
  anyOf: [{ const: false }, routeBucket],
} as const;

export const rateLimitsSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  'x-expect': 'rate limiting: rate_limits: { default: { rate: 100, per: 1s } }',
  properties: {
    store: { enum: ['memory', 'redis'], default: 'memory', 'x-expect': '"memory" or "redis"' },
    redis: { type: 'string', pattern: '^rediss?://', 'x-expect': 'a Redis URL like "redis://127.0.0.1:6379"' },
    // No fixed default: "warden:rl:<service.name>:" (rateLimitPrefixOf), so services sharing one Redis
    // keep their own buckets.
    prefix: { type: 'string', 'x-expect': 'a key prefix (default "warden:rl:<service.name>:")' },
    on_store_failure: { enum: ['fail-open', 'fail-closed'], default: 'fail-open', 'x-expect': '"fail-open" or "fail-closed"' },
    key: {
      type: 'array',
      minItems: 1,
      default: ['peer', 'client_id', 'ip'],
      items: { enum: ['peer', 'client_id', 'sub', 'ip'], 'x-expect': 'peer, client_id, sub or ip' },
    },
    default: bucketSchema,
    max_keys: positiveInt(100_000, 10_000_000),
  },
} as const;

/**
 * The Redis key prefix of a service's buckets: the configured one, else one naming the service. A
 * fixed default ("warden:rl:") merged the buckets of every service sharing a Redis whenever their
 * route ids matched (`api`, `health`): one service's traffic used up the other's limits.
 */
export function rateLimitPrefixOf(prefix: string | undefined, serviceName: string): string {
  return prefix ?? `warden:rl:${serviceName}:`;
}
