/**
 * `rate-limit` stage: a token bucket per client × route. The client is the first identity the
 * configured `key` list finds — the caller's SPIFFE ID, the token's client_id or sub, or the client
 * address. Over the limit: 429 with Retry-After; every answer carries the RateLimit-Policy and
 * RateLimit fields (draft-ietf-httpapi-ratelimit-headers).
 */
import { clientNetworkOf } from '../net/client-network.js';
import type { RateLimitConfig, RateLimitKey } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { RequestContext, Stage, Verdict } from '../pipeline/stage.js';
import { bucketOf, type Bucket, type Decision } from '../traffic/gcra.js';
import type { RateLimitRuntime, Take } from '../traffic/rate-limit-runtime.js';
import type { RateLimitCounters } from '../telemetry/metrics.js';

export interface RateLimitStageConfig {
  routeId: string;
  bucket: RateLimitConfig;
  keys: readonly RateLimitKey[];
  /** This route's decision counters (warden_ratelimit_decisions_total). */
  counters?: RateLimitCounters | undefined;
}

/** Whether a key list needs the authenticated principal (so the stage must run after authn). */
export function keysNeedPrincipal(keys: readonly RateLimitKey[]): boolean {
  return keys.includes('client_id') || keys.includes('sub');
}

/**
 * Which of the configured identities keys this request's bucket: the first that applies, else the
 * address. `peer` whenever the caller's certificate is verified, also with X-Forwarded-For from a
 * trusted proxy: `trusted_proxies` is often a whole pod range, and a workload in it skipping `peer`
 * chose its own bucket by the header it wrote (review rt28, F2). A front presenting a certificate is
 * given `key: [client_id, ip]` instead (proxy.md, behind a front proxy).
 */
export function keyKindOf(ctx: RequestContext, keys: readonly RateLimitKey[]): RateLimitKey {
  for (const kind of keys) {
    switch (kind) {
      case 'peer':
        if (ctx.peer.verified && ctx.peer.spiffeId) return kind;
        break;
      case 'client_id':
        if (ctx.principal?.clientId) return kind;
        break;
      case 'sub':
        if (ctx.principal?.subject) return kind;
        break;
      case 'ip':
        return kind;
    }
  }
  // No configured identity applies (e.g. [peer] without a certificate): the address still does.
  return 'ip';
}

/** The client's identity of that kind (keyKindOf has checked that it is there). */
export function clientOf(ctx: RequestContext, kind: RateLimitKey): string {
  switch (kind) {
    case 'peer':
      return ctx.peer.spiffeId as string;
    case 'client_id':
      return `${ctx.principal?.issuerId}/${ctx.principal?.clientId}`;
    case 'sub':
      return `${ctx.principal?.issuerId}/${ctx.principal?.subject}`;
    case 'ip':
      return clientNetworkOf(ctx.clientAddress);
  }
}

/**
 * A route id as a Structured Field string (RFC 8941 §3.3.3), the policy's name in RateLimit-Policy
 * and RateLimit: printable ASCII, `"` and `\` escaped. An OpenAPI operationId may hold any
 * character; one outside Latin-1 made Node refuse the header once the backend had already answered
 * (a 502 blamed on it, a 429 never delivered), so the others are percent-encoded as UTF-8.
 */
export function structuredFieldString(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) as number;
    if (code === 0x22 || code === 0x5c) out += `\\${ch}`;
    else if (code >= 0x20 && code <= 0x7e) out += ch;
    // Buffer spells a lone surrogate as U+FFFD rather than throwing, as encodeURIComponent would.
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return `"${out}"`;
}

/** A bucket's key: route, identity kind, identity (`orders|ip:203.0.113.0`); the prefixes per kind. */
export function keyPrefixesOf(routeId: string): Readonly<Record<RateLimitKey, string>> {
  return { peer: `${routeId}|peer:`, client_id: `${routeId}|client_id:`, sub: `${routeId}|sub:`, ip: `${routeId}|ip:` };
}

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/** A route's 429 and RateLimit fields, made once per route. */
export interface RateLimitAnswers {
  /** RateLimit-Policy's value. */
  readonly policy: string;
  /** RateLimit's value: tokens left, ms until the bucket is full. */
  state(remaining: number, resetMs: number): string;
  refusal(kind: RateLimitKey, retryAfterMs: number, resetMs: number): WardenError;
}

export function rateLimitAnswersOf(routeId: string, bucket: Bucket): RateLimitAnswers {
  const name = structuredFieldString(routeId);
  // The header counts whole seconds: the window is `per` rounded up, and the quota the refill over
  // that window (10 per 100 ms is q=100;w=1, not q=10;w=1, which said ten times stricter).
  const window = Math.max(1, Math.ceil(bucket.perMs / 1000));
  const policy = `${name};q=${Math.floor((bucket.rate * window * 1000) / bucket.perMs)};w=${window}`;
  const state = (remaining: number, resetMs: number) => `${name};r=${remaining};t=${seconds(resetMs)}`;
  return {
    policy,
    state,
    refusal: (kind, retryAfterMs, resetMs) =>
      new WardenError('ERR_RATE_LIMITED', {
        rule: `rate_limit.${routeId}`,
        detail: `Over this route's limit of ${bucket.rate} requests per ${bucket.perMs / 1000} s.`,
        headers: { 'retry-after': String(Math.max(1, seconds(retryAfterMs))), 'ratelimit-policy': policy, ratelimit: state(0, resetMs) },
        attributes: { 'warden.ratelimit.key': kind },
      }),
  };
}

/** fail-closed's refusal while the shared store cannot be asked. */
export const storeUnavailable = (): WardenError =>
  new WardenError('ERR_RATELIMIT_STORE_UNAVAILABLE', {
    rule: 'rate_limits.on_store_failure',
    detail: 'The rate limit could not be checked; try again shortly.',
    headers: { 'retry-after': '1' },
  });

export function createRateLimitStage(cfg: RateLimitStageConfig, runtime: RateLimitRuntime): Stage {
  const bucket = bucketOf(cfg.bucket);
  const answers = rateLimitAnswersOf(cfg.routeId, bucket);
  const { policy } = answers;
  const counters = cfg.counters;
  const keyPrefix = keyPrefixesOf(cfg.routeId);
  const decide = (ctx: RequestContext, kind: RateLimitKey, take: Take): Verdict => {
    // `unavailable` whenever the shared store could not say, whatever the policy then decided.
    counters?.[take === 'unavailable' || take.local ? 'unavailable' : take.allowed ? 'allowed' : 'limited']();
    if (take === 'unavailable') return storeUnavailable();
    const d: Decision = take;
    if (!d.allowed) return answers.refusal(kind, d.retryAfterMs, d.resetMs);
    const state = answers.state(d.remaining, d.resetMs);
    // Added to what an earlier stage set, if any (no spread: one object per request at most).
    const headers = ctx.responseHeaders;
    if (headers === undefined) ctx.responseHeaders = { 'ratelimit-policy': policy, ratelimit: state };
    else {
      headers['ratelimit-policy'] = policy;
      headers.ratelimit = state;
    }
    return undefined;
  };

  return {
    id: 'rate-limit',
    run(ctx) {
      const kind = keyKindOf(ctx, cfg.keys);
      const key = keyPrefix[kind] + clientOf(ctx, kind);
      const take = runtime.take(key, bucket, ctx);
      return take instanceof Promise ? take.then((t) => decide(ctx, kind, t)) : decide(ctx, kind, take);
    },
  };
}
