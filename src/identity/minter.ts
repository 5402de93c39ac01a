/**
 * Internal tokens for the backend (RFC 9068 JWT access tokens, ES256): `iss` = this sidecar,
 * `aud` = the backend, the caller's `sub` / `client_id` / `scope`, a fresh `jti`, `exp` no later
 * than the source token's nor the configured maximum, `act` and `cnf.x5t#S256` (RFC 8693 / 8705)
 * when the caller presented a certificate, the source token's actor chain (`sub` and `act` only)
 * nested inside, and the configured claim mapping. A source token whose own actor is a SPIFFE ID
 * is refused unless a verified workload is put in front of it. A minted token is
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
import { MAX_CLAIM_DEPTH } from './claim-depth.js';
import { namespaceReading } from './namespace-reading.js';
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
  /** The longest minted token forwarded (`tokens.mint.max_bytes`): a longer one is refused, not sent. */
  maxTokenBytes: number;
}

export interface Minter {
  /**
   * The minted JWT for this principal and caller: cached (synchronous) or freshly signed. The
   * `warden.token.minted` event of a fresh one is correlated with `request`, the one it was minted for.
   * A refusal for a source token already past its `exp` (accepted within the leeway only): a minted
   * token would expire before it was issued, and the backend would refuse it.
   */
  tokenFor(principal: Principal, peer: PeerIdentity, request?: MintedFor): string | WardenError | Promise<string | WardenError>;
}

/** The request a token is minted for (the pipeline's RequestContext is one). */
export type MintedFor = EventRequest;

const REUSE_FRACTION = 0.9;

/**
 * A minted token and what it says of its source: the fields `mintsTheSame` compares, the actor chain
 * and mapped claims as the token carries them (JSON, made once when minting). Not the principal:
 * that holds every claim of the IdP's answer, and the cache counts only this entry's bytes — with
 * large unmapped claims, 400 entries held 350 MiB and the sidecar died of OOM (red team 29). The
 * last principal seen is held weakly, for the identity check of the common case (the same cached
 * principal again).
 */
interface MintedEntry {
  readonly jwt: string;
  readonly subject: string | undefined;
  readonly clientId: string | undefined;
  readonly scope: string;
  readonly expiresAt: number | undefined;
  /** JSON of the minted `act` (from the source) and mapped claims; bounded by the minted token's size. */
  readonly said: string;
  seen: WeakRef<Principal>;
}

/**
 * A caller token whose prior actor (the outermost) is a SPIFFE ID, with no verified workload to
 * put in front of it: minted as is, the backend would read `act.sub` as the verified workload
 * that called (what this sidecar writes there), though only the IdP said so.
 */
const workloadActorClaimed = (p: Principal) =>
  new WardenError('ERR_AUTHN_TOKEN_INVALID', {
    rule: 'token.act',
    detail:
      "The access token's actor (act.sub) is a SPIFFE ID: a SPIFFE ID as actor is what this sidecar writes for a workload that called with a verified certificate, and this request has none.",
    attributes: { 'warden.token.issuer': p.issuerId, 'warden.token.hash': p.tokenHash.slice(0, 16) },
  });

/** A verified workload is put in front of the token's actors (`act.sub` = its SPIFFE ID). */
const workloadOf = (peer: PeerIdentity): string | undefined => (peer.verified && peer.sha256 ? peer.spiffeId : undefined);

const expiredForMinting = (p: Principal) =>
  new WardenError('ERR_AUTHN_TOKEN_EXPIRED', {
    rule: 'mint.exp',
    detail: 'The access token has expired.',
    attributes: { 'warden.token.issuer': p.issuerId, 'warden.token.hash': p.tokenHash.slice(0, 16) },
  });

/**
 * A minted token longer than `tokens.mint.max_bytes`, refused rather than forwarded: an
 * introspection answer granting 20 001 scopes made one the backend answered 431 with an empty body,
 * and the caller could not tell why. Says which claim made it large (the caller's own token's).
 */
function tooLarge(p: Principal, jwt: string, claims: Record<string, unknown>, max: number): WardenError {
  let largest = '';
  let largestBytes = 0;
  for (const [name, value] of Object.entries(claims)) {
    const bytes = Buffer.byteLength(typeof value === 'string' ? value : JSON.stringify(value));
    if (bytes > largestBytes) [largest, largestBytes] = [name, bytes];
  }
  const scopes = largest === 'scope' && typeof claims.scope === 'string' ? `, ${claims.scope.split(' ').length} scopes` : '';
  return new WardenError('ERR_MINTED_TOKEN_TOO_LARGE', {
    rule: 'mint.max_bytes',
    detail:
      `The token for the backend would be ${jwt.length} bytes, more than tokens.mint.max_bytes (${max}): ` +
      `its claim "${largest}" alone is ${largestBytes} bytes${scopes}, from the access token.`,
    attributes: { 'warden.token.issuer': p.issuerId, 'warden.token.hash': p.tokenHash.slice(0, 16) },
  });
}

export function createMinter(options: MinterOptions, keys: SigningKeys, deps: { metrics: TokenMetrics; events: EventBus }): Minter {
  const cache = new BoundedCache<MintedEntry>({ maxEntries: options.maxEntries, maxBytes: options.maxBytes });
  const inflight = new Map<string, Promise<string | WardenError>>();
  const mapping = Object.entries(options.claims);

  /**
   * What a token minted from `p` says beyond its subject, client, scope and exp: the source's actor
   * chain and the mapped claims, as minted (an absent claim is left out, a null one is kept).
   */
  const saidBy = (p: Principal): string => {
    const mapped: Record<string, unknown> = {};
    for (const [to, from] of mapping) mapped[to] = p.claims[from];
    return JSON.stringify([actorChain(p.claims.act) ?? null, mapped]);
  };

  /**
   * Whether a token minted from `p` says what the cached one does. Principals are cached, so the
   * same object is the common case; another one means the token was verified or introspected
   * again, and its answer may have changed (a scope taken away must not live on in the minted token).
   */
  const mintsTheSame = (e: MintedEntry, p: Principal): boolean => {
    if (e.seen.deref() === p) return true;
    if (e.subject !== p.subject || e.clientId !== p.clientId || e.scope !== p.scope || e.expiresAt !== p.expiresAt) return false;
    return e.said === saidBy(p);
  };

  async function mint(p: Principal, peer: PeerIdentity, cacheKey: string, request: MintedFor | undefined): Promise<string | WardenError> {
    const nowMs = Date.now();
    const iat = Math.floor(nowMs / 1000);
    // Whole seconds (RFC 7519 allows a fraction; some backends parse exp as an integer), never later than the source's.
    const exp = Math.min(iat + Math.floor(options.ttl / 1000), Math.floor(p.expiresAt ?? Infinity));
    const claims: Record<string, unknown> = {};
    for (const [to, from] of mapping) if (p.claims[from] !== undefined) claims[to] = p.claims[from];
    if (p.clientId !== undefined) claims.client_id = p.clientId;
    if (p.scope) claims.scope = p.scope;
    // Which IdP vouched for the caller: with several trusted issuers, "alice" of one is not "alice" of another.
    claims.idp = p.issuer;
    // A delegated token's actors stay (RFC 8693 §4.1): the backend must not read it as the subject's own call.
    const priorActor = actorChain(p.claims.act);
    if (priorActor) claims.act = priorActor;
    if (peer.verified && peer.sha256) {
      // x5t#S256 is the base64url SHA-256 of the DER certificate (RFC 8705 §3.1).
      claims.cnf = { 'x5t#S256': Buffer.from(peer.sha256, 'hex').toString('base64url') };
    }
    const workload = workloadOf(peer);
    // The calling workload is the current actor; those before it nest inside.
    if (workload) claims.act = priorActor ? { sub: workload, act: priorActor } : { sub: workload };
    // The key notes the exp: it stays published until then (+ leeway), whatever lifetime a reload sets.
    const key = keys.signerFor(exp);
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: key.kid })
      .setIssuer(options.issuer)
      .setAudience(options.audience)
      .setSubject(subjectOf(p))
      .setIssuedAt(iat)
      .setJti(randomUUID())
      .setExpirationTime(exp)
      .sign(key.privateKey);
    // Not cached: the next request with the same claims is refused the same way.
    if (jwt.length > options.maxTokenBytes) return tooLarge(p, jwt, { sub: subjectOf(p), ...claims }, options.maxTokenBytes);
    const life = (exp - iat) * 1000;
    const said = saidBy(p);
    const entry: MintedEntry = {
      jwt,
      subject: p.subject,
      clientId: p.clientId,
      scope: p.scope,
      expiresAt: p.expiresAt,
      said,
      seen: new WeakRef(p),
    };
    // Strings as UTF-16 (the scope and subject are in the JWT, counted with it).
    cache.set(cacheKey, entry, (jwt.length + said.length) * 2 + 300, nowMs + life * REUSE_FRACTION);
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
      if (hit && Date.now() < hit.freshUntil && mintsTheSame(hit.value, p)) {
        // The next hit with this principal is the cheap identity check.
        if (hit.value.seen.deref() !== p) hit.value.seen = new WeakRef(p);
        deps.metrics.cache('minted', 'hit');
        return hit.value.jwt;
      }
      let pending = inflight.get(cacheKey);
      // Checked only here: a cached token ends before its source token does.
      // In whole seconds, as minted: a source in its last (fractional) second would give a token ending as it is issued.
      if (!pending && p.expiresAt !== undefined && Math.floor(p.expiresAt) <= Math.floor(Date.now() / 1000)) return expiredForMinting(p);
      // Checked only here too: no token is minted, so none is cached, for such a principal and caller.
      if (!workloadOf(peer) && isSpiffeActor(p.claims.act)) return workloadActorClaimed(p);
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
function isActor(v: unknown): v is { sub: string; act?: unknown } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { sub?: unknown }).sub === 'string';
}

/** A name in the `spiffe:` scheme as a backend that trims and case-folds reads it (`" spiffe://…"` passed once). */
const inSpiffeNamespace = namespaceReading('spiffe:');

/** An actor named by a SPIFFE ID, as the minted `act.sub` names a verified workload. */
const isSpiffeActor = (v: unknown): boolean => isActor(v) && inSpiffeNamespace(v.sub);

interface Actor {
  sub: string;
  act?: Actor;
}

/**
 * The caller token's actor chain as the minted token carries it: each actor's `sub` and the actor
 * before it (`act`), nothing else — an IdP's `scope`, `cnf` or other members inside `act` are not
 * the minted token's to state. The chain ends at the first `act` that names no actor. Built without
 * recursion (claims nest at most MAX_CLAIM_DEPTH levels anyway).
 */
function actorChain(v: unknown): Actor | undefined {
  const subs: string[] = [];
  for (let actor = v; isActor(actor) && subs.length < MAX_CLAIM_DEPTH; actor = actor.act) subs.push(actor.sub);
  let chain: Actor | undefined;
  for (let i = subs.length - 1; i >= 0; i--) chain = chain ? { sub: subs[i] as string, act: chain } : { sub: subs[i] as string };
  return chain;
}
