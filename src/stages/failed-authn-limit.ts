/**
 * The rate limit of requests that fail authentication, on routes whose limit runs after `authn`
 * (its `key` names client_id or sub). Such a request has no token identity, so it is the address's
 * (or the verified peer's, when `key` lists peer): a failed authentication — a 401 from authn — is
 * charged to that bucket of the route, the one a request without a token is counted in. Once a
 * charge finds it empty, the address's requests are refused with 429 before authn until it has a
 * token again, so junk tokens stop reaching the IdP. Before, the limit only ever saw authenticated
 * requests: one address sent unlimited junk, each an introspection call, and a flood of it filled
 * idp.max_concurrent for everyone.
 *
 * Concurrent failures are bounded too: once an address has failed (its bucket not yet full again),
 * an authentication of its that will cost an IdP call (a cache miss; idp-admission.ts) reserves
 * one of its tokens while in flight, and is refused with the same 429 once those in flight hold
 * every token the bucket has left. An address that has not failed is not held: its first wave is
 * bounded by idp.max_concurrent, as before, and valid callers behind one NAT address do not use
 * each other's burst up (held from the first call, 10 new valid tokens at once against a burst of 5
 * got five 429s). Before, only a 401
 * that found the bucket empty refused the address, and only for one refill interval: a wave of
 * 200 concurrent junk tokens all passed the check before the first answer came back, and so did
 * the next wave once the refusal ran out — 64 introspections (idp.max_concurrent) a wave, 70 a
 * second against a bucket of 1 a second, which filled the IdP slots for every other caller.
 *
 * Valid callers are charged in their client_id / sub bucket as before, never in the address's: many
 * clients behind one NAT address do not use each other's limit up by succeeding (their
 * reservations are given back when they succeed). The check before authn is a Map lookup
 * (refusal-memo.ts), none at all while no address is refused; a cached token is never reserved
 * for, and costs two assignments.
 *
 * A Redis outage lifts none of this. A failure the shared store cannot be asked about is charged to
 * this sidecar's memory, whatever `on_store_failure` says (under fail-closed it was charged
 * nowhere: 30 junk tokens, 30 introspections). And under fail-closed, while the store is not
 * connected, the check answers the 503 the limit after authn would give every request of the
 * route, before its IdP call (one more function call a request, none of them allocating).
 */
import type { RateLimitConfig, RateLimitKey } from '../config/types.js';
import { WardenError } from '../errors.js';
import { idpAdmission, type IdpAdmission } from '../identity/idp-admission.js';
import type { RequestContext, Stage, Verdict } from '../pipeline/stage.js';
import type { RateLimitCounters } from '../telemetry/metrics.js';
import { bucketOf, EPSILON_MS } from '../traffic/gcra.js';
import type { RateLimitRuntime, Take } from '../traffic/rate-limit-runtime.js';
import type { RefusalMemo } from '../traffic/refusal-memo.js';
import { clientOf, keyKindOf, keyPrefixesOf, rateLimitAnswersOf, storeUnavailable } from './rate-limit.js';

export interface FailedAuthnLimitConfig {
  routeId: string;
  bucket: RateLimitConfig;
  keys: readonly RateLimitKey[];
  counters?: RateLimitCounters | undefined;
}

export interface FailedAuthnLimit {
  /** Before authn: 429 while this address's bucket is known to be empty; 503 while a fail-closed store is known to be down. */
  readonly check: Stage;
  /** The authn stage, charging the address's bucket for each 401 it answers. */
  charging(authn: Stage): Stage;
}

/**
 * The memo's clock: monotonic. Its times are all this file's (now + a wait), so a step of the wall
 * clock (an NTP step at boot, a VM resumed from a snapshot) must not move them: stepped back an
 * hour under Date.now(), an address held 200 ms stayed refused, `Retry-After: 3601`, and its IdP
 * calls held, for that hour (red team 28). The memory store's GCRA caps such a step; this had no cap.
 */
const clock = (): number => performance.now();

export function createFailedAuthnLimit(cfg: FailedAuthnLimitConfig, runtime: RateLimitRuntime, refusals: RefusalMemo): FailedAuthnLimit {
  const bucket = bucketOf(cfg.bucket);
  const answers = rateLimitAnswersOf(cfg.routeId, bucket);
  const keyPrefix = keyPrefixesOf(cfg.routeId);
  // From a refusal (or a charge that took the last token) to the next request that would pass.
  const refill = bucket.interval * bucket.cost - bucket.burstOffset;
  /**
   * The memo's key: the bucket's key under these settings. The memo outlives a reload (its held
   * addresses stay held), but a refusal or a ledger worked out at another rate is not this bucket's:
   * raised from 1 an hour to 100 a second, a held address waited out the old hour (row 201's class).
   */
  const settings = `${bucket.interval}/${bucket.burstOffset}/${bucket.cost}|`;
  const memo = (key: string) => settings + key;
  // Without a principal (before authn, and after it failed) this is the peer or the address.
  const keyOf = (ctx: RequestContext) => {
    const kind = keyKindOf(ctx, cfg.keys);
    return { kind, key: keyPrefix[kind] + clientOf(ctx, kind) };
  };

  const charged = (key: string, shared: Take, failure: WardenError): WardenError => {
    // The shared store could not say (fail-closed): this sidecar's memory still bounds the address.
    // Charged nothing, junk tokens reached the IdP without bound for as long as Redis was away.
    const take = shared === 'unavailable' ? runtime.takeLocal(key, bucket) : shared;
    const now = clock();
    refusals.charged(memo(key), now, now + take.resetMs);
    const waitMs = take.allowed ? take.resetMs + refill : take.retryAfterMs;
    if (waitMs > EPSILON_MS) refusals.remember(memo(key), { retryAt: now + waitMs, resetAt: now + Math.max(take.resetMs, waitMs) });
    return failure;
  };
  const afterAuthn = (ctx: RequestContext, verdict: Verdict, key?: string): Verdict | Promise<Verdict> => {
    // 401 only: the caller's credentials failed. An IdP outage (503) is no fault of the caller's.
    if (!(verdict instanceof WardenError) || verdict.status !== 401) return verdict;
    key ??= keyOf(ctx).key;
    const take = runtime.take(key, bucket, ctx);
    return take instanceof Promise ? take.then((t) => charged(key, t, verdict)) : charged(key, take, verdict);
  };
  /** A reserved authentication's verdict: charged if it failed, and only then is the reservation given back. */
  const settled = (ctx: RequestContext, key: string, verdict: Verdict): Verdict | Promise<Verdict> => {
    let after: Verdict | Promise<Verdict>;
    try {
      after = afterAuthn(ctx, verdict, key);
    } catch (err) {
      refusals.release(memo(key), clock());
      throw err;
    }
    if (!(after instanceof Promise)) {
      refusals.release(memo(key), clock());
      return after;
    }
    return after.finally(() => refusals.release(memo(key), clock()));
  };

  // The request whose authn stage is running (synchronously), and the key its IdP call was reserved to.
  let admitting: RequestContext | undefined;
  let reservedKey: string | undefined;
  const admission: IdpAdmission = {
    admit() {
      const ctx = admitting as RequestContext;
      const { kind, key } = keyOf(ctx);
      const now = clock();
      const waitMs = refusals.reserve(memo(key), bucket, now);
      if (waitMs <= 0) {
        if (waitMs === 0) reservedKey = key;
        return undefined;
      }
      cfg.counters?.limited();
      return answers.refusal(kind, waitMs, waitMs - refill);
    },
  };

  return {
    check: {
      id: 'rate-limit',
      run(ctx) {
        // fail-closed and the store not connected: the rate-limit stage after authn would answer
        // this, one IdP call later (a flood of junk tokens, each one; a valid token, for nothing).
        if (runtime.storeDown()) {
          cfg.counters?.unavailable();
          return storeUnavailable();
        }
        if (refusals.size === 0) return undefined;
        const { kind, key } = keyOf(ctx);
        const now = clock();
        const refusal = refusals.get(memo(key), now);
        if (refusal === undefined) return undefined;
        cfg.counters?.limited();
        return answers.refusal(kind, refusal.retryAt - now, refusal.resetAt - now);
      },
    },
    charging(authn) {
      return {
        id: authn.id,
        run(ctx) {
          admitting = ctx;
          idpAdmission.current = admission;
          let verdict: Verdict | Promise<Verdict>;
          try {
            verdict = authn.run(ctx);
          } catch (err) {
            if (reservedKey !== undefined) refusals.release(memo(reservedKey), clock());
            reservedKey = undefined;
            throw err;
          } finally {
            idpAdmission.current = undefined;
            admitting = undefined;
          }
          const key = reservedKey;
          if (key !== undefined) {
            reservedKey = undefined;
            if (!(verdict instanceof Promise)) return settled(ctx, key, verdict);
            return verdict.then(
              (v) => settled(ctx, key, v),
              (err: unknown) => {
                refusals.release(memo(key), clock());
                throw err;
              },
            );
          }
          if (verdict === undefined) return undefined;
          return verdict instanceof Promise ? verdict.then((v) => afterAuthn(ctx, v)) : afterAuthn(ctx, verdict);
        },
      };
    },
  };
}
