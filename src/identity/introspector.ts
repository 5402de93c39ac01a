/**
 * Opaque tokens → principals via RFC 7662, behind a bounded cache (DESIGN §2): one IdP call per
 * token however many requests carry it at once (coalesced), answers kept no longer than the
 * configured maximum nor the token's exp (never extended on a hit), optional short negative
 * caching, a circuit breaker and a concurrency cap so an IdP outage costs requests nothing, and —
 * configurable — a grace window in which a still-unexpired cached answer is served while the IdP
 * is failing. An IdP that cannot be asked means 503, never 401.
 */
import type { TokensConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { SpanParent } from '../telemetry/client-span.js';
import type { TokenMetrics } from '../telemetry/metrics.js';
import { BoundedCache } from './bounded-cache.js';
import { nestsDeeperThan } from './claim-depth.js';
import { createCircuitBreaker } from './circuit-breaker.js';
import { idpAdmission } from './idp-admission.js';
import { IdpError, type IdpFailure } from './idp-http.js';
import type { IntrospectionClient } from './introspection-client.js';
import type { EndpointResolver } from './issuer-endpoints.js';
import { checkIntrospectionClaims, principalOf, tokenRefusal, type IssuerPolicy, type Principal } from './principal.js';
import type { SharedTokenState } from './shared-token-state.js';

export type IntrospectionOutcome = Principal | WardenError;

export interface Introspector {
  /** Synchronous when the local cache answers (the common case); a promise when the IdP or Redis must be asked. */
  check(token: string, hash: string, parent?: SpanParent): IntrospectionOutcome | Promise<IntrospectionOutcome>;
  /** The token's answer cached here, if any: whether it is known active, and its exp (seconds). */
  cached(hash: string): { expiresAt: number | undefined } | undefined;
  /** Drops the cached answer and revokes at the IdP (RFC 7009): false when it has no revocation endpoint; throws when the call fails. */
  revoke(token: string, hash: string): Promise<boolean>;
  /** Drops the cached answer (a revocation learnt from another replica). */
  forget(hash: string): void;
  readonly cacheSize: number;
}

export interface IntrospectorDeps {
  policy: IssuerPolicy;
  tokens: TokensConfig;
  client: IntrospectionClient;
  endpoints: EndpointResolver;
  shared: SharedTokenState | undefined;
  metrics: TokenMetrics;
}

const NEGATIVE_ENTRY_BYTES = 128;
/** An IdP's 429 without a Retry-After we can read pauses introspection this long; one asking for longer is held to THROTTLE_MAX_MS. */
export const THROTTLE_DEFAULT_MS = 1000;
export const THROTTLE_MAX_MS = 30_000;
/** A 429 asking for less (`Retry-After: 0`, a date past) still pauses this long: else every new token of a flood called an IdP refusing them. */
export const THROTTLE_MIN_MS = 100;

/**
 * Why a call failed that lets grace serve a stale answer: the IdP itself is failing (or the circuit
 * opened on such failures). Not `overloaded` (our own slots, which a caller fills with junk tokens)
 * nor `throttled` (an IdP that is up and a 429 junk provokes): grace then served revoked tokens on
 * demand. A reason added later gets no grace until it is listed here (fail closed).
 */
const IDP_FAILING: ReadonlySet<IdpFailure> = new Set<IdpFailure>([
  'connect_timeout',
  'timeout',
  'unreachable',
  'status',
  'bad_response',
  'circuit_open',
  'not_ready',
]);

/** Call slots beyond `max_concurrent` that only re-checks of cached answers may take, so a flood of new tokens cannot starve them. */
export function recheckReserve(maxConcurrent: number): number {
  return Math.max(1, Math.ceil(maxConcurrent / 8));
}

export function createIntrospector(deps: IntrospectorDeps): Introspector {
  const { policy, tokens, client, endpoints, shared, metrics } = deps;
  const leewaySec = tokens.leeway / 1000;
  const maxTtl = shared ? Math.min(tokens.cache.max_ttl, tokens.shared?.revocation_lag ?? Infinity) : tokens.cache.max_ttl;
  const cache = new BoundedCache<Principal>({ maxEntries: tokens.cache.max_entries, maxBytes: tokens.cache.max_bytes });
  const negative = new BoundedCache<WardenError>({
    maxEntries: tokens.cache.negative_max_entries,
    maxBytes: tokens.cache.negative_max_entries * NEGATIVE_ENTRY_BYTES,
  });
  const breaker = createCircuitBreaker({ failures: tokens.idp.breaker.failures, openFor: tokens.idp.breaker.open_for });
  const inflight = new Map<string, Promise<IntrospectionOutcome>>();
  let callsInFlight = 0;
  const newCallLimit = tokens.idp.max_concurrent;
  const recheckCallLimit = newCallLimit + recheckReserve(newCallLimit);
  // Until when the IdP asked (429, Retry-After) not to be called: new uncached tokens get 503 at once.
  let throttledUntil = 0;
  // The same for re-checks of cached answers, set only by a 429 to a re-check: a 429 provoked by a
  // flood of new tokens does not stop them, one the IdP gives the re-checks themselves does.
  let recheckThrottledUntil = 0;

  const attributes = (hash: string) => ({ 'warden.token.issuer': policy.id, 'warden.token.hash': hash.slice(0, 16) });
  const inactive = (hash: string, rule: string) =>
    new WardenError('ERR_AUTHN_TOKEN_INACTIVE', { rule, detail: 'The access token is not active.', attributes: attributes(hash) });
  const unavailable = (err: IdpError, hash: string) =>
    new WardenError('ERR_IDP_UNAVAILABLE', {
      rule: `introspection.${err.reason}`,
      detail: 'The identity provider could not be asked; try again shortly.',
      headers: { 'retry-after': String(retryAfterOf(err)) },
      cause: err,
      attributes: attributes(hash),
    });

  const retryAfterOf = (err: IdpError): number => {
    if (err.reason === 'circuit_open') return Math.ceil(tokens.idp.breaker.open_for / 1000);
    if (err.reason === 'throttled') return Math.max(1, Math.ceil((throttledUntil - Date.now()) / 1000));
    return 1;
  };

  /** `fetchedAt`: when the IdP gave the answer; it is trusted for maxTtl from then, whoever stored it. */
  const remember = (hash: string, p: Principal, fetchedAt: number, keptUntil = Infinity): void => {
    const expMs = p.expiresAt === undefined ? Infinity : p.expiresAt * 1000;
    const freshUntil = Math.min(fetchedAt + maxTtl, keptUntil, expMs);
    const staleUntil = Math.min(freshUntil + tokens.idp.grace, expMs);
    cache.set(hash, p, estimateBytes(p), freshUntil, staleUntil);
  };

  const claimsRefusal = (hash: string, wrong: string) =>
    tokenRefusal(
      'ERR_AUTHN_TOKEN_INVALID',
      `introspection.${wrong}`,
      `The access token's ${wrong} ${wrong === 'nbf' || wrong === 'iat' ? 'is in the future' : 'is not acceptable'}.`,
      {
        issuerId: policy.id,
        tokenHash: hash,
      },
    );

  const rememberNegative = (hash: string, error: WardenError): WardenError => {
    if (tokens.cache.negative_ttl > 0) negative.set(hash, error, NEGATIVE_ENTRY_BYTES, Date.now() + tokens.cache.negative_ttl);
    return error;
  };

  /**
   * An answer refused for its claims: the earlier answer cached for the token goes too. Kept, a
   * re-check refused so (its `aud`, type or `nbf` changed at the IdP) left it in place, served by
   * grace once the IdP failed, and taken as the token's answer by a revocation.
   */
  const refuseClaims = (hash: string, wrong: string): WardenError => {
    cache.delete(hash);
    return rememberNegative(hash, claimsRefusal(hash, wrong));
  };

  /** `recheck`: the token has a cached answer past its freshness (it was active), so it may use the reserve. */
  async function callIdp(token: string, parent: SpanParent, recheck: boolean): Promise<Record<string, unknown>> {
    if ((recheck ? recheckThrottledUntil : throttledUntil) > Date.now())
      throw new IdpError('throttled', `${policy.issuer} asked for fewer introspection calls (429)`);
    if (callsInFlight >= (recheck ? recheckCallLimit : newCallLimit))
      throw new IdpError('overloaded', `${callsInFlight} introspection calls already in flight`);
    if (!breaker.allow()) throw new IdpError('circuit_open', `introspection at ${policy.issuer} failed repeatedly; circuit open`);
    callsInFlight++;
    const started = performance.now();
    try {
      const found = await endpoints.get();
      if (!found.introspection) throw new IdpError('not_ready', `${policy.issuer} publishes no introspection_endpoint`);
      const answer = await client.introspect(found.introspection, token, parent);
      breaker.success();
      metrics.idpCall('introspection', 'ok', (performance.now() - started) / 1000);
      return answer;
    } catch (err) {
      const idpErr = err instanceof IdpError ? err : new IdpError('bad_response', (err as Error).message, { cause: err });
      if (idpErr.reason === 'throttled') {
        // Back-pressure, not an outage: counted towards opening the breaker, an IdP rate-limiting
        // one flood turned every caller's new token into 503 for open_for. Its Retry-After (at most
        // THROTTLE_MAX_MS) is waited out instead, for this issuer only.
        breaker.neither();
        const waitMs = Math.min(THROTTLE_MAX_MS, Math.max(THROTTLE_MIN_MS, idpErr.retryAfterMs ?? THROTTLE_DEFAULT_MS));
        throttledUntil = Math.max(throttledUntil, Date.now() + waitMs);
        if (recheck) recheckThrottledUntil = Math.max(recheckThrottledUntil, Date.now() + waitMs);
      } else breaker.failure();
      metrics.idpCall('introspection', idpErr.reason, (performance.now() - started) / 1000);
      throw idpErr;
    } finally {
      callsInFlight--;
    }
  }

  async function resolve(token: string, hash: string, stale: Principal | undefined, parent: SpanParent): Promise<IntrospectionOutcome> {
    if (shared) {
      const answer = await shared.get(hash, parent);
      if (answer === 'revoked') {
        cache.delete(hash);
        return rememberNegative(hash, inactive(hash, 'introspection.revoked'));
      }
      const now = Date.now();
      // Trusted for this replica's own max_ttl / revocation_lag from the time the IdP answered, not
      // for as long as whoever stored it chose (a replica with a longer lag, or a clock far ahead:
      // an answer dated beyond the leeway is not used).
      // Nested too deep for the claims walks after this (estimateBytes, the minter): no replica of
      // this version stores such an answer (the client refuses it), so it is not used; the IdP is asked.
      if (answer && answer.fetchedAt <= now + tokens.leeway && now < answer.fetchedAt + maxTtl && !nestsDeeperThan(answer.claims)) {
        // Stored by a replica that judged it by its own policy (another configuration, during a
        // rollout): this issuer's token_types, nbf and iss are checked here again.
        const wrong = checkIntrospectionClaims(answer.claims, policy, now / 1000, leewaySec);
        if (wrong) return refuseClaims(hash, wrong);
        const p = principalOf(answer.claims, policy, 'introspection', hash);
        remember(hash, p, Math.min(answer.fetchedAt, now), now + answer.ttlMs);
        metrics.cache('introspection', 'shared_hit');
        return p;
      }
    }
    let claims: Record<string, unknown>;
    try {
      claims = await callIdp(token, parent, stale !== undefined);
    } catch (err) {
      const idpErr = err as IdpError;
      // Only an IdP that is failing is ridden through; otherwise the token may have been revoked
      // and the IdP could say so: 503, the entry kept for the next attempt to re-check.
      if (stale && IDP_FAILING.has(idpErr.reason)) {
        metrics.cache('introspection', 'stale');
        return stale;
      }
      return unavailable(idpErr, hash);
    }
    const now = Date.now();
    if (claims.active !== true) {
      cache.delete(hash);
      // We believed it active a moment ago: it was revoked at the IdP. Tell the other replicas.
      if (stale && shared) void shared.revoke(hash, stale.expiresAt ? stale.expiresAt * 1000 - now : maxTtl).catch(() => undefined);
      return rememberNegative(hash, inactive(hash, 'introspection.active'));
    }
    const wrong = checkIntrospectionClaims(claims, policy, now / 1000, leewaySec);
    if (wrong) return refuseClaims(hash, wrong);
    const p = principalOf(claims, policy, 'introspection', hash);
    remember(hash, p, now);
    if (shared) {
      const expMs = p.expiresAt === undefined ? Infinity : p.expiresAt * 1000;
      shared.put(hash, claims, now, Math.min(maxTtl, expMs - now));
    }
    return p;
  }

  return {
    get cacheSize() {
      return cache.size;
    },
    check(token, hash, parent) {
      const now = Date.now();
      const known = negative.get(hash, now);
      if (known) {
        metrics.cache('introspection', 'negative');
        return known.value;
      }
      const entry = cache.get(hash, now);
      if (entry && now < entry.freshUntil) {
        metrics.cache('introspection', 'hit');
        return entry.value;
      }
      let pending = inflight.get(hash);
      if (!pending) {
        // This one will cost an IdP call: whoever answers for the request may refuse it first
        // (failed-authn-limit.ts: an address's calls in flight are held to its bucket).
        const refused = idpAdmission.current?.admit();
        if (refused !== undefined) return refused;
        metrics.cache('introspection', 'miss');
        // Coalesced: the spans of the one IdP call go under the request that made it.
        pending = resolve(token, hash, entry?.value, parent).finally(() => inflight.delete(hash));
        inflight.set(hash, pending);
      }
      return pending;
    },
    cached(hash) {
      const known = cache.get(hash)?.value;
      return known && { expiresAt: known.expiresAt };
    },
    async revoke(token, hash) {
      cache.delete(hash);
      const found = await endpoints.get().catch(() => undefined);
      if (!found?.revocation) return false;
      const started = performance.now();
      try {
        await client.revoke(found.revocation, token);
      } catch (err) {
        const reason = err instanceof IdpError ? err.reason : 'bad_response';
        metrics.idpCall('revocation', reason, (performance.now() - started) / 1000);
        throw err;
      }
      metrics.idpCall('revocation', 'ok', (performance.now() - started) / 1000);
      return true;
    },
    forget(hash) {
      cache.delete(hash);
    },
  };
}

/** Rough heap cost of a cached principal: its claims as JSON plus the key and object overhead. */
function estimateBytes(p: Principal): number {
  return JSON.stringify(p.claims).length * 2 + 64 + 400;
}
