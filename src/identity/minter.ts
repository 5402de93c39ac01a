/**
 * Internal tokens for the backend (RFC 9068 JWT access tokens, ES256): `iss` = this sidecar,
 * `aud` = the backend, the caller's `sub` / `client_id` / `scope`, a fresh `jti`, `exp` no later
 * than the source token's nor the configured maximum, `act` and `cnf.x5t#S256` (RFC 8693 / 8705)
 * when the caller presented a certificate, and the configured claim mapping. A minted token is
 * reused for the same source token and caller until 10 % of its life is left, and only while what
 * it says is still what the IdP says: a re-introspected token whose scope, subject, client, mapped
 * claims or exp changed gets a new one.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { PeerIdentity } from '../mesh/peer-identity.js';
import type { EventBus, EventRequest } from '../telemetry/events.js';
import type { TokenMetrics } from '../telemetry/metrics.js';
import { WardenError } from '../errors.js';
import { BoundedCache } from './bounded-cache.js';
import { CLIENT_SUBJECT_PREFIX, type Principal } from './principal.js';
import type { SigningKeys } from './signing-keys.js';

export interface MinterOptions {
  issuer: string;
  audience: string;
  /** ms */
  ttl: number;
  /** minted claim → source claim */
  claims: Readonly<Record<string, string>>;
  maxEntries: number;
  maxBytes: number;
}

export interface Minter {
  /**
   * The minted JWT for this principal and caller: cached (synchronous) or freshly signed. The
   * `warden.token.minted` event of a fresh one is correlated with `request`, the one it was minted for.
   * A refusal for a source token already past its `exp` (accepted within the leeway only): a minted
   * token would expire before it was issued, and the backend would refuse it.
   */
  tokenFor(principal: Principal, peer: PeerIdentity, request?: MintedFor): string | WardenError | Promise<string>;
}

/** The request a token is minted for (the pipeline's RequestContext is one). */
export type MintedFor = EventRequest;

const REUSE_FRACTION = 0.9;

/** A minted token and the principal it was minted from (the object whose claims it carries). */
interface MintedEntry {
  readonly jwt: string;
  from: Principal;
}

const expiredForMinting = (p: Principal) =>
  new WardenError('ERR_AUTHN_TOKEN_EXPIRED', {
    rule: 'mint.exp',
    detail: 'The access token has expired.',
    attributes: { 'warden.token.issuer': p.issuerId, 'warden.token.hash': p.tokenHash.slice(0, 16) },
  });

export function createMinter(options: MinterOptions, keys: SigningKeys, deps: { metrics: TokenMetrics; events: EventBus }): Minter {
  const cache = new BoundedCache<MintedEntry>({ maxEntries: options.maxEntries, maxBytes: options.maxBytes });
  const inflight = new Map<string, Promise<string>>();
  const mapping = Object.entries(options.claims);

  /**
   * Whether a token minted from `a` says what one minted from `b` would. Principals are cached, so
   * the same object is the common case; another one means the token was verified or introspected
   * again, and its answer may have changed (a scope taken away must not live on in the minted token).
   */
  const mintsTheSame = (a: Principal, b: Principal): boolean => {
    if (a === b) return true;
    if (a.subject !== b.subject || a.clientId !== b.clientId || a.scope !== b.scope || a.expiresAt !== b.expiresAt) return false;
    if (a.claims.act !== b.claims.act && JSON.stringify(a.claims.act) !== JSON.stringify(b.claims.act)) return false;
    for (const [, from] of mapping) {
      const x = a.claims[from];
      const y = b.claims[from];
      if (x !== y && (typeof x !== 'object' || typeof y !== 'object' || JSON.stringify(x) !== JSON.stringify(y))) return false;
    }
    return true;
  };

  async function mint(p: Principal, peer: PeerIdentity, cacheKey: string, request: MintedFor | undefined): Promise<string> {
    const nowMs = Date.now();
    const iat = Math.floor(nowMs / 1000);
    const exp = Math.min(iat + Math.floor(options.ttl / 1000), p.expiresAt ?? Infinity);
    const claims: Record<string, unknown> = {};
    for (const [to, from] of mapping) if (p.claims[from] !== undefined) claims[to] = p.claims[from];
    if (p.clientId !== undefined) claims.client_id = p.clientId;
    if (p.scope) claims.scope = p.scope;
    // Which IdP vouched for the caller: with several trusted issuers, "alice" of one is not "alice" of another.
    claims.idp = p.issuer;
    // A delegated token's actors stay (RFC 8693 §4.1): the backend must not read it as the subject's own call.
    const priorActor = isActor(p.claims.act) ? p.claims.act : undefined;
    if (priorActor) claims.act = priorActor;
    if (peer.verified && peer.sha256) {
      // x5t#S256 is the base64url SHA-256 of the DER certificate (RFC 8705 §3.1).
      claims.cnf = { 'x5t#S256': Buffer.from(peer.sha256, 'hex').toString('base64url') };
      // The calling workload is the current actor; those before it nest inside.
      if (peer.spiffeId) claims.act = priorActor ? { sub: peer.spiffeId, act: priorActor } : { sub: peer.spiffeId };
    }
    const key = keys.current();
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: key.kid })
      .setIssuer(options.issuer)
      .setAudience(options.audience)
      .setSubject(subjectOf(p))
      .setIssuedAt(iat)
      .setJti(randomUUID())
      .setExpirationTime(exp)
      .sign(key.privateKey);
    const life = (exp - iat) * 1000;
    cache.set(cacheKey, { jwt, from: p }, jwt.length * 2 + 200, nowMs + life * REUSE_FRACTION);
    deps.metrics.cache('minted', 'miss');
    deps.events.emit(
      'warden.token.minted',
      {
        'warden.token.issuer': p.issuerId,
        ...(p.clientId ? { 'warden.token.client_id': p.clientId } : {}),
        'warden.token.hash': p.tokenHash.slice(0, 16),
      },
      request,
    );
    return jwt;
  }

  return {
    tokenFor(p, peer, request) {
      const cacheKey = peer.verified && peer.sha256 ? `${p.tokenHash}:${peer.sha256}` : p.tokenHash;
      const hit = cache.get(cacheKey);
      if (hit && Date.now() < hit.freshUntil && mintsTheSame(hit.value.from, p)) {
        // The next hit with this principal is the cheap identity check.
        hit.value.from = p;
        deps.metrics.cache('minted', 'hit');
        return hit.value.jwt;
      }
      let pending = inflight.get(cacheKey);
      // Checked only here: a cached token ends before its source token does.
      if (!pending && p.expiresAt !== undefined && p.expiresAt <= Math.floor(Date.now() / 1000)) return expiredForMinting(p);
      if (!pending) {
        pending = mint(p, peer, cacheKey, request).finally(() => inflight.delete(cacheKey));
        inflight.set(cacheKey, pending);
      }
      return pending;
    },
  };
}

/**
 * The minted `sub`: the caller token's, or for a token no resource owner took part in (client
 * credentials) the client in a namespace of its own, so that a client named `alice` is never the
 * user `alice` (RFC 9068 §5). `checkPrincipal` refuses tokens that name neither, and a caller's
 * own `sub` in that namespace.
 */
export function subjectOf(p: Pick<Principal, 'subject' | 'clientId'>): string {
  return p.subject ?? `${CLIENT_SUBJECT_PREFIX}${p.clientId ?? ''}`;
}

/** An RFC 8693 actor claim: an object naming its actor by a string `sub`. */
function isActor(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { sub?: unknown }).sub === 'string';
}
