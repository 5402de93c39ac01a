/**
 * Self-contained JWT access tokens → principals, with `jose`: the issuer's keys from its JWKS
 * (createRemoteJWKSet, fetched through the IdP agent: prefetched, refreshed on an unknown `kid` at
 * most once per cooldown, kept — stale — while the IdP is down), a per-issuer algorithm allow-list,
 * required iss / aud / exp, bounded leeway, `typ` as configured (else none naming another kind of
 * JWT: jwt-kind.ts). Headers that point at other keys
 * (`jku`, `x5u`, `jwk`, `x5c`) or demand extensions (`crit`) are refused before any key is looked up.
 * Verified principals are cached by SHA-256(issuer ‖ token) until min(exp, cache max_ttl).
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwksCache,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyOptions,
  type JWTVerifyResult,
} from 'jose';
import type { IssuerConfig, TokensConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { TokenMetrics } from '../telemetry/metrics.js';
import { BoundedCache } from './bounded-cache.js';
import { MAX_CLAIM_DEPTH, nestsDeeperThan } from './claim-depth.js';
import { createCircuitBreaker, type CircuitBreaker } from './circuit-breaker.js';
import { IdpError, type IdpHttp } from './idp-http.js';
import type { EndpointResolver } from './issuer-endpoints.js';
import { isCanonicalJws, isWholeRsaSignature } from './jws-encoding.js';
import { isUntyped, namesOtherKind } from './jwt-kind.js';
import { principalOf, type IssuerPolicy, type Principal } from './principal.js';
import { tokenHash, type ConnectionTokenHashes } from './token-hash.js';

/** Unknown `kid`: refetch the JWKS at most this often (a flood of forged kids costs one fetch). */
export const JWKS_COOLDOWN_MS = 30_000;

/** The request headers jose asks its JWKS fetch to send (a Headers object or a plain record). */
const headersOf = (init: RequestInit): Record<string, string> => Object.fromEntries(new Headers(init.headers).entries());
/** Keys are refreshed in the background this often, so rotations at the IdP are picked up early. */
const JWKS_REFRESH_MS = 5 * 60_000;
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'crit'] as const;

export interface TrustedIssuer {
  readonly cfg: IssuerConfig;
  readonly policy: IssuerPolicy;
  readonly endpoints: EndpointResolver;
  /** The key set the verifier this one replaces (a reload) held for the same key source, if any. */
  readonly previousKeys?: IssuerKeys | undefined;
}

/** An issuer's key set as last fetched: from where, the keys, and when (ms since the epoch). */
export interface IssuerKeys {
  readonly jwksUri: string;
  readonly jwks: JSONWebKeySet;
  readonly uat: number;
}

/** A JWT's claims as it states them (not verified yet), and the trusted issuer it names. */
export interface ClaimedIssuer {
  readonly trusted: TrustedIssuer;
  readonly claims: JWTPayload;
}

export interface JwtVerifier {
  /** `connection`: the client's connection, whose last token's hash `hashes` may hold. */
  verify(token: string, connection?: object): Principal | WardenError | Promise<Principal | WardenError>;
  /** The issuer a JWT names, when it decodes and that issuer is trusted; otherwise the refusal `verify` would give. */
  claimedIssuer(token: string): ClaimedIssuer | WardenError;
  /** Fetches discovery documents and keys now (startup); failures are logged by the caller and retried on demand. */
  prefetch(): Promise<PromiseSettledResult<void>[]>;
  /** The key set held for an issuer (`iss`), for the verifier a reload builds; undefined before any was fetched. */
  keysOf(issuer: string): IssuerKeys | undefined;
  close(): void;
}

type RemoteJwks = ReturnType<typeof createRemoteJWKSet>;

const invalid = (rule: string, detail: string, issuerId?: string) =>
  new WardenError('ERR_AUTHN_TOKEN_INVALID', { rule, detail, ...(issuerId ? { attributes: { 'warden.token.issuer': issuerId } } : {}) });

/** The scope of a verified JWT's hash among a connection's token hashes (its issuer is the token's own). */
const JWT_SCOPE = '\0jwt';

/** The most published keys a token is tried against (its header names no `kid`, or one several keys share). */
export const MAX_CANDIDATE_KEYS = 8;

/** More than MAX_CANDIDATE_KEYS keys match: refused as no matching key (rule `jwt.kid`), with its own detail. */
class TooManyCandidateKeys extends errors.JWKSNoMatchingKey {}

/**
 * Several keys of the set match the token's header: an IdP publishing its next key before signing
 * with it, its tokens without a `kid` (optional, RFC 7515) or the next key under the same one. jose
 * leaves the choice to the caller; each candidate is tried, and only a signature none verifies fails.
 */
async function eachMatchingKey(err: unknown, token: string, options: JWTVerifyOptions): Promise<JWTVerifyResult & { key: unknown }> {
  if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
  let tried = 0;
  for await (const key of err) {
    // Each candidate is an import (once) and a verification (every time: a refused token is not
    // cached): against an IdP publishing 1 000 keys a junk token without kid cost up to 1.7 s.
    if (++tried > MAX_CANDIDATE_KEYS) throw new TooManyCandidateKeys();
    try {
      return { ...(await jwtVerify(token, key, options)), key };
    } catch (inner) {
      if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
    }
  }
  throw new errors.JWSSignatureVerificationFailed();
}

export function createJwtVerifier(
  issuers: readonly TrustedIssuer[],
  tokens: TokensConfig,
  http: IdpHttp,
  metrics: TokenMetrics,
  hashes?: ConnectionTokenHashes,
): JwtVerifier {
  const byIssuer = new Map(issuers.map((i) => [i.cfg.issuer, i]));
  const cache = new BoundedCache<Principal>({ maxEntries: tokens.cache.max_entries, maxBytes: tokens.cache.max_bytes });
  const keySets = new Map<string, Promise<RemoteJwks>>();
  // Per issuer, what jose keeps of its key set (it writes each good fetch there): a reload carries it.
  const keyCaches = new Map<string, { jwksUri: string; cache: { jwks?: JSONWebKeySet; uat?: number } }>();
  const breakers = new Map<string, CircuitBreaker>();
  const leewaySec = tokens.leeway / 1000;
  const openFor = tokens.idp.breaker.open_for;
  let timer: NodeJS.Timeout | undefined;

  const breakerOf = (issuer: string) => {
    let b = breakers.get(issuer);
    if (!b)
      breakers.set(issuer, (b = createCircuitBreaker({ failures: tokens.idp.breaker.failures, openFor: tokens.idp.breaker.open_for })));
    return b;
  };

  const keySetOf = (trusted: TrustedIssuer): Promise<RemoteJwks> => {
    let set = keySets.get(trusted.cfg.issuer);
    if (!set) {
      const breaker = breakerOf(trusted.cfg.issuer);
      set = trusted.endpoints.get().then((found) => {
        if (!found.jwksUri) throw new IdpError('not_ready', `${trusted.cfg.issuer} publishes no jwks_uri`);
        // The keys held before a reload, for the same URL: served until a fetch replaces them (a
        // reload while the IdP is down does not turn its tokens into 503s).
        const before = trusted.previousKeys;
        const cache = before?.jwksUri === found.jwksUri ? { jwks: before.jwks, uat: before.uat } : {};
        keyCaches.set(trusted.cfg.issuer, { jwksUri: found.jwksUri, cache });
        return createRemoteJWKSet(new URL(found.jwksUri), {
          [jwksCache]: cache as { jwks: JSONWebKeySet; uat: number },
          cacheMaxAge: Infinity, // keys never go stale by age: they are served while the IdP is down
          cooldownDuration: JWKS_COOLDOWN_MS,
          timeoutDuration: http.timeouts.response,
          [customFetch]: async (url: string, init: RequestInit) => {
            if (!breaker.allow())
              throw new IdpError('circuit_open', `JWKS fetches from ${trusted.cfg.issuer} failed repeatedly; circuit open`);
            const started = performance.now();
            try {
              // Through the capped client (1 MiB, no decompression), and anything but a JSON key set
              // is the IdP failing: jose starts its cooldown only after a good fetch, so a 429, a 404
              // or an HTML page counted as fine let every forged kid cost a fetch.
              const res = await http.request(url, { headers: headersOf(init) });
              if (res.status !== 200) throw new IdpError('status', `JWKS at ${url} answered ${res.status}`);
              const body: unknown = res.json();
              if (!Array.isArray((body as { keys?: unknown } | null)?.keys))
                throw new IdpError('bad_response', `JWKS at ${url} answered without a "keys" array`);
              // jose's own test of a key set (every key a plain object, …), before the fetch counts
              // as good: a set it then refused (`{"keys":[<key>, null]}`) started no cooldown, so
              // every forged kid cost a fetch, and the circuit never opened.
              try {
                createLocalJWKSet(body as JSONWebKeySet);
              } catch {
                throw new IdpError('bad_response', `JWKS at ${url} answered a key set jose refuses (a key that is not a JSON object)`);
              }
              breaker.success();
              metrics.idpCall('jwks', 'ok', (performance.now() - started) / 1000);
              return new Response(new Uint8Array(res.body), { status: 200, headers: { 'content-type': 'application/json' } });
            } catch (err) {
              breaker.failure();
              metrics.idpCall('jwks', err instanceof IdpError ? err.reason : 'unreachable', (performance.now() - started) / 1000);
              throw err;
            }
          },
        });
      });
      // A failed discovery is retried by the next request (the resolver rate-limits it).
      set.catch(() => keySets.delete(trusted.cfg.issuer));
      keySets.set(trusted.cfg.issuer, set);
    }
    return set;
  };

  async function verifySlow(token: string, trusted: TrustedIssuer, hash: string): Promise<Principal | WardenError> {
    const { cfg, policy } = trusted;
    let jwks: RemoteJwks;
    try {
      jwks = await keySetOf(trusted);
    } catch (err) {
      // Discovery answered, without a jwks_uri: this issuer's tokens are introspected, never JWTs.
      // A string shaped like a JWT naming it is no outage to retry (503), but a token refused.
      if (err instanceof IdpError && err.reason === 'not_ready') {
        return invalid('jwt.iss', 'The access token names an issuer whose JWTs this service cannot verify (it publishes no keys).', cfg.id);
      }
      return unavailable(err, cfg.id, openFor);
    }
    let payload: JWTPayload;
    let alg: string;
    let typ: unknown;
    let key: unknown;
    const options: JWTVerifyOptions = {
      issuer: cfg.issuer,
      ...(policy.anyAudience ? {} : { audience: [...policy.audience] }),
      algorithms: cfg.jwt.algorithms,
      ...(cfg.jwt.typ ? { typ: cfg.jwt.typ } : {}),
      clockTolerance: leewaySec,
      requiredClaims: ['exp'],
    };
    try {
      ({
        payload,
        protectedHeader: { alg, typ },
        key,
      } = await jwtVerify(token, jwks, options).catch((err: unknown) => eachMatchingKey(err, token, options)));
    } catch (err) {
      return joseRefusal(err, cfg.id, openFor);
    }
    // One signature, one spelling: an RSA-PSS signature a zero byte short verified too, and was
    // hashed as another token (a revoked one came back in, 1 PSS token in 256).
    if (!isWholeRsaSignature(token, alg, key)) {
      return invalid('jwt.encoding', "The token's RSA signature is not as long as its key's modulus.", cfg.id);
    }
    // jose checks iat only given a maxTokenAge (which would also require one): a token stamped as
    // issued in the future (an IdP's clock, or one minted ahead to outlive a key) is refused as its
    // nbf would be (docs/adversarial.md 209).
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + leewaySec) {
      return new WardenError('ERR_AUTHN_TOKEN_INVALID', {
        rule: 'jwt.iat',
        detail: "The access token's iat is in the future.",
        attributes: { 'warden.token.issuer': cfg.id },
      });
    }
    // Claims nested deeper than any real token's: code that walks claims recursively (the cache's
    // size estimate, SignJWT when the minted token is signed) overflowed the stack on them, a 500.
    if (nestsDeeperThan(payload, MAX_CLAIM_DEPTH)) {
      return new WardenError('ERR_AUTHN_TOKEN_INVALID', {
        rule: 'token.claims',
        detail: `The access token's claims nest more than ${MAX_CLAIM_DEPTH} levels deep.`,
        attributes: { 'warden.token.issuer': cfg.id },
      });
    }
    const p = principalOf(payload, policy, 'jwt', hash, cfg.jwt.typ === undefined && cfg.jwt.require_client && isUntyped(typ));
    const now = Date.now();
    cache.set(hash, p, JSON.stringify(payload).length * 2 + 464, Math.min(now + tokens.cache.max_ttl, (p.expiresAt as number) * 1000));
    return p;
  }

  function claimedIssuer(token: string): ClaimedIssuer | WardenError {
    // Before anything is keyed by the token's text (its hash, the denylist): one spelling per token.
    if (!isCanonicalJws(token)) return invalid('jwt.encoding', 'The access token is not canonical base64url.');
    let claims: JWTPayload;
    try {
      claims = decodeJwt(token);
    } catch {
      return invalid('jwt.format', 'The access token is not a well-formed JWT.');
    }
    const trusted = typeof claims.iss === 'string' ? byIssuer.get(claims.iss) : undefined;
    if (!trusted) return invalid('jwt.iss', 'The access token comes from an issuer this service does not trust.');
    return { trusted, claims };
  }

  return {
    claimedIssuer,
    verify(token, connection) {
      // The connection's last token again: its hash (and so its cached principal) without decoding it.
      const known = hashes?.get(connection, JWT_SCOPE, token);
      const knownHit = known === undefined ? undefined : cache.get(known);
      if (knownHit) {
        metrics.cache('jwt', 'hit');
        return knownHit.value;
      }
      const claimed = claimedIssuer(token);
      if (claimed instanceof WardenError) return claimed;
      const { trusted } = claimed;
      const hash = known ?? tokenHash(trusted.cfg.issuer, token);
      hashes?.set(connection, JWT_SCOPE, token, hash);
      const hit = cache.get(hash);
      if (hit) {
        metrics.cache('jwt', 'hit');
        return hit.value;
      }
      metrics.cache('jwt', 'miss');
      let header: Record<string, unknown>;
      try {
        header = decodeProtectedHeader(token);
      } catch {
        return invalid('jwt.format', 'The access token is not a well-formed JWT.', trusted.cfg.id);
      }
      for (const name of FORBIDDEN_HEADERS) {
        if (header[name] !== undefined)
          return invalid(`jwt.header.${name}`, `The token's "${name}" header is not accepted.`, trusted.cfg.id);
      }
      if (typeof header.alg !== 'string' || !trusted.cfg.jwt.algorithms.includes(header.alg)) {
        return invalid('jwt.alg', 'The token is signed with an algorithm this issuer is not trusted with.', trusted.cfg.id);
      }
      // Without a configured typ (jose checks that one), a typ naming another kind of JWT — a
      // logout token, a SET, a DPoP proof — is no access token (jwt-kind.ts).
      if (trusted.cfg.jwt.typ === undefined && namesOtherKind(header.typ)) {
        return invalid('jwt.typ', "The access token's typ is not acceptable.", trusted.cfg.id);
      }
      return verifySlow(token, trusted, hash);
    },
    async prefetch() {
      const settled = await Promise.allSettled(
        issuers.map(async (trusted) => {
          const found = await trusted.endpoints.get();
          if (found.jwksUri) await (await keySetOf(trusted)).reload();
        }),
      );
      timer ??= setInterval(() => {
        for (const set of keySets.values()) void set.then((jwks) => jwks.reload()).catch(() => undefined);
      }, JWKS_REFRESH_MS).unref();
      return settled;
    },
    keysOf(issuer) {
      const held = keyCaches.get(issuer);
      const { jwks, uat } = held?.cache ?? {};
      return held && jwks && uat !== undefined ? { jwksUri: held.jwksUri, jwks, uat } : undefined;
    },
    close() {
      if (timer) clearInterval(timer);
    },
  };
}

/** `openForMs`: the breaker's `open_for`, what a client is told to wait while the circuit is open (as introspection does). */
function unavailable(err: unknown, issuerId: string, openForMs: number): WardenError {
  const reason = err instanceof IdpError ? err.reason : 'unreachable';
  return new WardenError('ERR_IDP_UNAVAILABLE', {
    rule: `jwks.${reason}`,
    detail: "The issuer's signing keys could not be fetched; try again shortly.",
    headers: { 'retry-after': reason === 'circuit_open' ? String(Math.ceil(openForMs / 1000)) : '1' },
    cause: err,
    attributes: { 'warden.token.issuer': issuerId },
  });
}

/** jose's verdicts → our codes: a token the keys refute is 401; keys we could not get is 503. */
function joseRefusal(err: unknown, issuerId: string, openForMs: number): WardenError {
  const e = err as { code?: string; claim?: string; reason?: string };
  const attributes = { 'warden.token.issuer': issuerId };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return new WardenError('ERR_AUTHN_TOKEN_EXPIRED', {
        rule: 'jwt.exp',
        detail: 'The access token has expired.',
        attributes,
        cause: err,
      });
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return new WardenError('ERR_AUTHN_TOKEN_INVALID', {
        rule: `jwt.${e.claim ?? 'claims'}`,
        detail: `The access token's ${e.claim ?? 'claims'} ${e.claim === 'nbf' ? 'is in the future' : 'is not acceptable'}.`,
        attributes,
        cause: err,
      });
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return new WardenError('ERR_AUTHN_TOKEN_INVALID', {
        rule: 'jwt.kid',
        detail:
          err instanceof TooManyCandidateKeys
            ? `More than ${MAX_CANDIDATE_KEYS} of the issuer's keys match the token (its header names no kid, or one they share): it is not tried against them all.`
            : 'No trusted key matches the token.',
        attributes,
        cause: err,
      });
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new WardenError('ERR_AUTHN_TOKEN_INVALID', {
        rule: 'jwt.signature',
        detail: 'The token signature does not verify.',
        attributes,
        cause: err,
      });
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return new WardenError('ERR_AUTHN_TOKEN_INVALID', {
        rule: 'jwt.alg',
        detail: 'The token uses an algorithm or feature that is not accepted.',
        attributes,
        cause: err,
      });
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JWK_INVALID':
      return new WardenError('ERR_AUTHN_TOKEN_INVALID', {
        rule: 'jwt.format',
        detail: 'The access token is not a valid JWT.',
        attributes,
        cause: err,
      });
    default:
      // ERR_JWKS_TIMEOUT, ERR_JWKS_INVALID, a non-200 JWKS answer, a network error, an open circuit.
      return unavailable(err, issuerId, openForMs);
  }
}
