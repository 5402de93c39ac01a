/**
 * Token translation's live state, built once from `tokens` and kept across reloads that do not
 * change it: the trusted issuers (endpoints, JWKS, introspection clients and caches), the token
 * sources, the signing keys and minter, the revocation denylist and the optional Redis state.
 * Stages hold a reference to it; nothing here reads configuration on the request path.
 */
import { MAX_LEEWAY_MS } from '../config/tokens-check.js';
import type { TokensConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { SpanParent } from '../telemetry/client-span.js';
import type { EventBus } from '../telemetry/events.js';
import type { Logger } from '../telemetry/logger.js';
import type { TokenMetrics } from '../telemetry/metrics.js';
import { headerSafeRealm } from '../net/auth-challenge.js';
import { configureReplayCache, createDpopProofs, replayCacheFor } from './dpop-proof.js';
import type { ReplayCache } from './dpop-replay.js';
import { createIdpHttp, IdpError, type IdpFailure } from './idp-http.js';
import { createIntrospectionClient } from './introspection-client.js';
import { createIntrospector, type Introspector } from './introspector.js';
import { createEndpointResolver, keySourceOf, type IssuerEndpoints } from './issuer-endpoints.js';
import { createJwtVerifier, type IssuerKeys, type TrustedIssuer } from './jwt-verifier.js';
import { isRespelledJws } from './jws-encoding.js';
import { createMinter, type Minter } from './minter.js';
import { checkPrincipal, type IssuerPolicy, type Principal } from './principal.js';
import { createSharedSeal, sharedStateSecret } from './shared-seal.js';
import { createRedisTokenState, type SharedTokenState } from './shared-token-state.js';
import { createSigningKeys, type KeyRingState, type SigningKeys } from './signing-keys.js';
import { MAX_REVOCATION_END_MS, MAX_REVOKED_TOKENS, TokenDenylist } from './token-denylist.js';
import { createTokenBinding, type TokenBinding } from './token-binding.js';
import { ConnectionTokenHashes, tokenHash } from './token-hash.js';
import { compileTokenSources, type TokenSources } from './token-sources.js';

/** IdP failures that are an HTTP answer (not the one needed), not the IdP out of reach. */
const ANSWERED: ReadonlySet<IdpFailure> = new Set(['status', 'bad_response', 'not_ready']);

export type AuthnOutcome = Principal | WardenError;

/**
 * What a runtime found out about an issuer's key source (`keySourceOf`): its discovered endpoints
 * and its key set. Facts about the IdP, not about what is accepted: a runtime a reload builds takes
 * them for every issuer whose key source did not change.
 */
export interface IssuerState {
  readonly endpoints: IssuerEndpoints | undefined;
  readonly keys: IssuerKeys | undefined;
}

export interface TokenRuntime {
  readonly sources: TokenSources;
  /** Sender-constrained tokens (cnf): the proof each request must bring. Its DPoP replay cache lives as long as the runtime. */
  readonly binding: TokenBinding;
  readonly minter: Minter | undefined;
  /** Header the minted token goes in, and whether it carries the Bearer scheme. */
  readonly mintHeader: { name: string; bearer: boolean } | undefined;
  /** realm of WWW-Authenticate challenges (made header-safe where a challenge is written). */
  readonly realm: string;
  /** The issuer ids in configuration order. */
  readonly issuerIds: readonly string[];
  /**
   * The principal for a token: `mode` picks JWT verification or introspection (auto: by shape);
   * `allowed` restricts the issuers a route accepts (undefined = all); `parent` is the request's
   * trace context, the parent of the IdP and Redis calls this may make.
   */
  authenticate(
    token: string,
    mode: 'auto' | 'jwt' | 'introspect',
    allowed: ReadonlySet<string> | undefined,
    parent?: SpanParent,
    /** The client's connection (its socket): the hash of the token it sent last is kept for it. */
    connection?: object,
  ): AuthnOutcome | Promise<AuthnOutcome>;
  /** The minted tokens' public keys (JWKS JSON). */
  jwksJson(): string | undefined;
  /** The signing keys as they stand, for the runtime a reload builds (undefined without minting). */
  keyRing(): KeyRingState | undefined;
  /** The DPoP proofs seen, for the runtime a reload builds: a proof is accepted once across reloads. */
  replayCache(): ReplayCache;
  /** Each issuer's discovered endpoints and key set, by key source, for the runtime a reload builds. */
  issuerState(): ReadonlyMap<string, IssuerState>;
  /**
   * Applies this runtime's settings to what it shares with the runtime it replaces (the DPoP replay
   * cache's limits): called when the reload that built it commits, so that one that fails after
   * building it changes nothing in force.
   */
  putInForce(): void;
  /**
   * Revokes a token here, at the IdP (if it has a revocation endpoint) and, with Redis, on every
   * replica of this service; `detail` says what the revocation covers, or why Redis did not take it
   * and that it will be retried.
   */
  revoke(token: string): Promise<{ hash: string; idp: boolean; shared: boolean; service: string; detail: string }>;
  /** Discovery documents and keys fetched at startup; failures are logged and retried on demand. */
  prefetch(): Promise<void>;
  close(): Promise<void>;
}

export interface TokenRuntimeDeps {
  serviceName: string;
  /** The sidecar's SPIFFE ID (mesh), the default `iss` of minted tokens. */
  selfId: string | undefined;
  events: EventBus;
  logger: Logger;
  metrics: TokenMetrics;
  /** The sidecar's revoked tokens, kept across reloads (a new list when not given). */
  denylist?: TokenDenylist | undefined;
  /** The signing keys of the runtime this one replaces: kept, so the JWKS still has every key whose tokens are valid. */
  keyRing?: KeyRingState | undefined;
  /** The DPoP proofs the runtime this one replaces has seen: kept (a new cache let each be replayed once). */
  replayCache?: ReplayCache | undefined;
  /**
   * The issuers' endpoints and keys of the runtime this one replaces, by key source: asked for again,
   * and used when the IdP does not answer (a reload while it is down keeps its tokens accepted).
   */
  issuers?: ReadonlyMap<string, IssuerState> | undefined;
  /** Build without connecting anywhere (`warden config check`): no Redis, nothing fetched. */
  offline?: boolean;
}

/** How long a revocation lasts when neither the token's exp is known nor its IdP revoked it. */
const UNKNOWN_LIFE_MS = 24 * 3600_000;
const DENYLIST_FULL = `the list of revoked tokens is full (${MAX_REVOKED_TOKENS} still running)`;

/** Three base64url segments: a JWS in compact serialisation (RFC 7515 §7.1). */
const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * Why a token cannot be revoked here: the refusal it gets on a request (a bad signature, expired,
 * inactive at its IdP), which nothing on a denylist would change. An IdP or key set that cannot be
 * reached stays what it is (503): the token may be good.
 */
function notRevocable(refusal: WardenError): WardenError {
  if (refusal.status >= 500) return refusal;
  return new WardenError('ERR_AUTHN_TOKEN_INVALID', {
    rule: 'revocation.unverified',
    detail: `${refusal.detail ?? refusal.title} Only a token this sidecar accepts is revoked here; nothing was revoked.`,
  });
}

export function looksLikeJws(token: string): boolean {
  return JWS_SHAPE.test(token);
}

/**
 * Another spelling of a JWT (`=` padding, base64's `+` and `/`, a signature's spare bits set), in
 * any mode: sent to introspection, it was hashed as written, and an IdP that decodes JWTs leniently
 * answered for it as for the token, a revoked one included (`token==` under `auto`, which took it
 * for an opaque token; any respelling under `introspect`). Refused as the JWT path refuses it.
 */
const respelled = () =>
  new WardenError('ERR_AUTHN_TOKEN_INVALID', { rule: 'jwt.encoding', detail: 'The access token is not canonical base64url.' });

export async function createTokenRuntime(tokens: TokensConfig, deps: TokenRuntimeDeps): Promise<TokenRuntime> {
  const { logger, metrics, events } = deps;
  const http = createIdpHttp(tokens.idp.timeouts);
  const sharedSecret = tokens.shared && !deps.offline ? sharedStateSecret(tokens) : undefined;
  // The configuration check requires tokens.shared.key when there is no credential to derive it from.
  if (tokens.shared && !deps.offline && !sharedSecret) throw new Error('tokens.shared needs tokens.shared.key');
  const sharedPrefix = tokens.shared?.prefix ?? `warden:${deps.serviceName}:`;
  /**
   * What a revocation covers, said in its answer: revocations are per service (their Redis keys
   * under its prefix), and "shared": true read as "everywhere" left the token valid at every other
   * service that accepts it, a JWT for its whole life (docs/adversarial.md 216).
   */
  const revocationReach = (sharedDone: boolean, idp: boolean, jws: boolean) =>
    `Refused from now on by ${sharedDone ? `every replica of service ${deps.serviceName} (Redis prefix ${sharedPrefix})` : `this replica of service ${deps.serviceName}`}` +
    (idp
      ? '; revoked at its IdP too, so other services that accept it refuse it once their cached answer is re-checked.'
      : '; other services that accept this token still do: revoke it through each of them' +
        (jws ? ' (a JWT cannot be revoked at its IdP).' : ', or at its IdP.'));
  const shared: SharedTokenState | undefined =
    tokens.shared && sharedSecret
      ? await createRedisTokenState({
          url: tokens.shared.redis,
          // Each service its own keys and channel by default: one prefix for all let every service
          // read the others' answers and revocations.
          prefix: sharedPrefix,
          seal: createSharedSeal(sharedSecret),
          logger,
          events,
          writeBackMs: tokens.shared.write_back,
        })
      : undefined;

  const trusted: TrustedIssuer[] = tokens.issuers.map((cfg) => {
    const policy: IssuerPolicy = Object.freeze({
      id: cfg.id,
      issuer: cfg.issuer,
      audience: cfg.audience,
      anyAudience: cfg.allow_any_audience,
      tokenTypes: cfg.introspection?.token_types ?? [],
    });
    const previous = deps.issuers?.get(keySourceOf(cfg));
    return { cfg, policy, endpoints: createEndpointResolver(cfg, http, previous?.endpoints), previousKeys: previous?.keys };
  });
  const policies = new Map(trusted.map((t) => [t.cfg.id, t.policy]));
  const introspectors = new Map<string, Introspector>();
  for (const t of trusted) {
    if (!t.cfg.introspection) continue;
    const client = createIntrospectionClient(t.cfg.introspection, t.cfg.issuer, http);
    introspectors.set(t.cfg.id, createIntrospector({ policy: t.policy, tokens, client, endpoints: t.endpoints, shared, metrics }));
  }
  const introspectingIds = [...introspectors.keys()];
  const hashes = new ConnectionTokenHashes();
  const jwt = createJwtVerifier(trusted, tokens, http, metrics, hashes);

  let keys: SigningKeys | undefined;
  let minter: Minter | undefined;
  if (tokens.mint.enabled) {
    keys = await createSigningKeys(
      { rotateEvery: tokens.mint.key_rotation, tokenLifetime: tokens.mint.ttl, leeway: tokens.leeway },
      deps.keyRing,
    );
    minter = createMinter(
      {
        issuer: tokens.mint.issuer ?? deps.selfId ?? `urn:warden:${deps.serviceName}`,
        audience: tokens.mint.audience ?? deps.serviceName,
        ttl: tokens.mint.ttl,
        claims: tokens.mint.claims,
        maxEntries: tokens.cache.max_entries,
        maxBytes: tokens.cache.max_bytes,
        maxTokenBytes: tokens.mint.max_bytes,
      },
      keys,
      { metrics, events },
    );
  }

  // Tokens revoked through this sidecar or any replica: refused before any cache is consulted. The
  // sidecar's list, kept across reloads; with Redis, filled from its marks too (a replica that
  // starts after a revocation, or missed it while disconnected, still refuses the token).
  const denylist = deps.denylist ?? new TokenDenylist();
  // How long a revocation lasts when the token's exp is not known here: once the IdP has revoked it,
  // until no cache (local or shared) can hold an active answer any more; otherwise for a day, the
  // longest a token Warden cannot date is assumed to live.
  const afterIdpRevoked = Math.max(tokens.cache.max_ttl + tokens.idp.grace, tokens.shared?.revocation_lag ?? 0);
  if (shared) {
    await shared.onRevoked(
      (hash, untilMs) => {
        if (!denylist.add(hash, untilMs)) logger.error({ 'warden.token.hash': hash.slice(0, 16) }, DENYLIST_FULL);
        for (const i of introspectors.values()) i.forget(hash);
      },
      () => denylist.live(),
    );
  }

  const revokedRefusal = (issuerId: string, hash: string) =>
    new WardenError('ERR_AUTHN_TOKEN_INACTIVE', {
      rule: 'token.revoked',
      detail: 'The access token has been revoked.',
      attributes: { 'warden.token.issuer': issuerId, 'warden.token.hash': hash.slice(0, 16) },
    });
  const leewaySec = tokens.leeway / 1000;
  const finish = (outcome: AuthnOutcome, allowed: ReadonlySet<string> | undefined): AuthnOutcome => {
    if (outcome instanceof WardenError) return outcome;
    if (denylist.has(outcome.tokenHash)) return revokedRefusal(outcome.issuerId, outcome.tokenHash);
    if (allowed !== undefined && !allowed.has(outcome.issuerId)) {
      return new WardenError('ERR_AUTHN_TOKEN_INVALID', {
        rule: 'token.issuer',
        detail: 'Tokens from this issuer are not accepted on this route.',
        attributes: { 'warden.token.issuer': outcome.issuerId },
      });
    }
    return checkPrincipal(outcome, policies.get(outcome.issuerId) as IssuerPolicy, Date.now() / 1000, leewaySec) ?? outcome;
  };

  const introspectorFor = (allowed: ReadonlySet<string> | undefined): [string, Introspector] | undefined => {
    const id = allowed ? introspectingIds.find((i) => allowed.has(i)) : introspectingIds[0];
    return id === undefined ? undefined : [id, introspectors.get(id) as Introspector];
  };

  const safeRealm = headerSafeRealm(deps.serviceName);
  const replay = deps.replayCache ?? replayCacheFor(tokens.dpop);
  return {
    binding: createTokenBinding(createDpopProofs(tokens.dpop, safeRealm, replay)),
    sources: compileTokenSources(tokens.sources, tokens.max_token_bytes, tokens.mint.enabled ? tokens.mint.header : undefined),
    minter,
    mintHeader: tokens.mint.enabled
      ? { name: tokens.mint.header.toLowerCase(), bearer: tokens.mint.header.toLowerCase() === 'authorization' }
      : undefined,
    realm: deps.serviceName,
    issuerIds: trusted.map((t) => t.cfg.id),
    authenticate(token, mode, allowed, parent, connection) {
      const asJwt = mode === 'jwt' || (mode === 'auto' && looksLikeJws(token));
      let outcome: AuthnOutcome | Promise<AuthnOutcome>;
      if (asJwt) {
        outcome = jwt.verify(token, connection);
      } else {
        const found = introspectorFor(allowed);
        if (!found) {
          return new WardenError('ERR_AUTHN_TOKEN_INVALID', {
            rule: 'introspection.none',
            detail: 'Only JWT access tokens are accepted here.',
          });
        }
        const [id, introspector] = found;
        let hash = hashes.get(connection, id, token);
        if (hash === undefined) {
          // The connection's last token was checked when it was hashed.
          if (isRespelledJws(token)) return respelled();
          hash = tokenHash((policies.get(id) as IssuerPolicy).issuer, token);
          hashes.set(connection, id, token, hash);
        }
        // Known revoked: refused without asking the cache, Redis or the IdP.
        if (denylist.has(hash)) return revokedRefusal(id, hash);
        outcome = introspector.check(token, hash, parent);
      }
      return outcome instanceof Promise ? outcome.then((o) => finish(o, allowed)) : finish(outcome, allowed);
    },
    jwksJson: () => keys?.jwksJson(),
    keyRing: () => keys?.state(),
    replayCache: () => replay,
    putInForce: () => configureReplayCache(replay, tokens.dpop),
    issuerState: () => new Map(trusted.map((t) => [keySourceOf(t.cfg), { endpoints: t.endpoints.known, keys: jwt.keysOf(t.cfg.issuer) }])),
    async revoke(token) {
      const already = (hash: string) => ({
        hash,
        idp: false,
        shared: false,
        service: deps.serviceName,
        detail: 'The token was already revoked here; nothing changed.',
      });
      let hashes: string[];
      // The hash the answer reports: the token's own issuer's, when known.
      let ownHash = 0;
      let expiresAt: number | undefined;
      let idp = false;
      if (isRespelledJws(token)) throw respelled();
      if (looksLikeJws(token)) {
        const claimed = jwt.claimedIssuer(token);
        if (claimed instanceof WardenError) throw claimed;
        hashes = [tokenHash(claimed.trusted.cfg.issuer, token)];
        if (denylist.has(hashes[0] as string)) return already(hashes[0] as string);
        // Only a token this sidecar accepts goes on the list, with the exp its signature vouches
        // for: a forged JWT (any claims, an exp in the year 9999) put there filled the list for
        // good, and every later revocation failed (docs/adversarial.md defect 102).
        const verified = await jwt.verify(token);
        if (verified instanceof WardenError) throw notRevocable(verified);
        expiresAt = verified.expiresAt;
      } else {
        if (introspectingIds.length === 0)
          throw new WardenError('ERR_AUTHN_TOKEN_INVALID', { rule: 'introspection.none', detail: 'No issuer introspects opaque tokens.' });
        // An opaque token names no issuer, and routes may send it to any introspecting one: it is
        // refused under each of their hashes. Only its own IdP is told, when known (the one whose
        // cache holds it, or the only one): a token must not be sent to an IdP that did not issue it.
        hashes = introspectingIds.map((id) => tokenHash((policies.get(id) as IssuerPolicy).issuer, token));
        if (hashes.every((hash) => denylist.has(hash))) return already(hashes[0] as string);
        const owners = introspectingIds.flatMap((id, i) => {
          const cached = (introspectors.get(id) as Introspector).cached(hashes[i] as string);
          return cached ? [{ id, i, expiresAt: cached.expiresAt }] : [];
        });
        const owner =
          owners.length === 1
            ? owners[0]
            : introspectingIds.length === 1
              ? { id: introspectingIds[0] as string, i: 0, expiresAt: undefined }
              : undefined;
        if (!owner) {
          throw new WardenError('ERR_AUTHN_TOKEN_INVALID', {
            rule: 'revocation.unknown',
            detail:
              'No issuer of this sidecar has an answer for this token, and it cannot tell which IdP issued it: revoke it at its IdP. Nothing was revoked.',
          });
        }
        const introspector = introspectors.get(owner.id) as Introspector;
        expiresAt = owner.expiresAt;
        if (owners.length === 0) {
          // Never seen here: the IdP says whether it is active (and until when) before it goes on
          // the list; random strings went on it for a day each, and were sent to the IdP to revoke.
          const outcome = await introspector.check(token, hashes[owner.i] as string);
          if (outcome instanceof WardenError) throw notRevocable(outcome);
          expiresAt = outcome.expiresAt;
        }
        ownHash = owner.i;
        idp = await introspector.revoke(token, hashes[owner.i] as string).catch((err: unknown) => {
          logger.warn({ err: (err as Error).message }, 'revocation at the IdP failed; revoked on this sidecar (and replicas) only');
          return false;
        });
        for (const [i, id] of introspectingIds.entries()) (introspectors.get(id) as Introspector).forget(hashes[i] as string);
      }
      const now = Date.now();
      // Past exp by the largest leeway a reload may set, not the current one: a reload raising
      // `leeway` (1s → 60s) let a revoked token back in between exp + 1 s and exp + 60 s.
      // Bounded: an exp centuries ahead (or in ms) is revoked for ever, not past what Redis takes.
      const untilMs = Math.min(
        expiresAt !== undefined ? expiresAt * 1000 + MAX_LEEWAY_MS : now + (idp ? afterIdpRevoked : UNKNOWN_LIFE_MS),
        MAX_REVOCATION_END_MS,
      );
      for (const hash of hashes) {
        if (!denylist.add(hash, untilMs, now)) {
          const full = new WardenError('ERR_REVOCATIONS_FULL', {
            rule: 'tokens.revocations',
            detail: `${DENYLIST_FULL}; the token is not revoked. Revoke it at its IdP, or retry once older revocations have ended.`,
          });
          // A token that stays accepted: said every time (an operator's request, not a flood's).
          events.emit('warden.token.revocation_refused', {
            'warden.code': full.code,
            'warden.action': 'block',
            'warden.rule': 'tokens.revocations',
            'warden.token.hash': hash.slice(0, 16),
            'warden.detail': DENYLIST_FULL,
          });
          throw full;
        }
      }
      let sharedDone = false;
      let detail: string | undefined;
      const hash = hashes[ownHash] as string;
      if (shared) {
        await Promise.all(hashes.map((h) => shared.revoke(h, untilMs - now))).then(
          () => (sharedDone = true),
          (err: unknown) => {
            // Said every time, not throttled: the other replicas accept the token until Redis takes it.
            detail =
              `Redis did not take the revocation (${(err as Error).message}): only this replica refuses the token ` +
              `until it does; it is written again every ${(tokens.shared?.write_back ?? 0) / 1000} s until Redis takes it.`;
            events.emit('warden.token.revocation_unshared', { 'warden.token.hash': hash.slice(0, 16), 'warden.detail': detail });
          },
        );
      }
      events.emit('warden.token.revoked', { 'warden.token.hash': hash.slice(0, 16), 'warden.detail': `idp=${idp} shared=${sharedDone}` });
      return {
        hash,
        idp,
        shared: sharedDone,
        service: deps.serviceName,
        detail: detail ?? revocationReach(sharedDone, idp, looksLikeJws(token)),
      };
    },
    async prefetch() {
      const results = await jwt.prefetch();
      results.forEach((r, i) => {
        const t = trusted[i];
        if (r.status !== 'rejected' || !t) return;
        const kept = t.previousKeys !== undefined && jwt.keysOf(t.cfg.issuer) !== undefined;
        // An HTTP answer that was not the metadata or keys (a 404 where they were looked for, another
        // issuer's document) is no outage: saying "not reachable" sent operators to the network.
        const answered = r.reason instanceof IdpError && ANSWERED.has(r.reason.reason);
        logger.warn(
          { issuer: t.cfg.issuer, err: (r.reason as Error).message },
          answered
            ? kept
              ? 'identity provider answered, but not with its metadata or keys (err says what); its keys from before the reload are kept, and refreshed once it does'
              : 'identity provider answered, but not with its metadata or keys (err says what); tokens from it get 503 until it does'
            : kept
              ? 'identity provider not reachable; its keys from before the reload are kept, and refreshed once it answers'
              : 'identity provider not reachable yet; tokens from it get 503 until it is',
        );
      });
    },
    async close() {
      jwt.close();
      keys?.stop();
      await shared?.close();
      await http.close();
    },
  };
}
