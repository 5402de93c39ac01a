/**
 * The authenticated caller, as stages after authn see it, built from an introspection answer or a
 * verified JWT payload. The checks that do not depend on how the token was verified (issuer,
 * audience, times, token use) live here so both paths apply them the same way.
 */
import { NOT_ACCESS_TOKEN_TYPES } from '../config/token-kinds.js';
import { WardenError, type ErrorCode } from '../errors.js';
import { namespaceReading } from './namespace-reading.js';

export interface Principal {
  readonly issuerId: string;
  readonly issuer: string;
  readonly via: 'jwt' | 'introspection';
  readonly subject: string | undefined;
  readonly clientId: string | undefined;
  /** The granted scopes (valid scope-tokens only, each once), space-joined as the minted `scope` claim. */
  readonly scope: string;
  readonly scopes: ReadonlySet<string>;
  readonly audience: readonly string[];
  /** `exp` in seconds since the epoch; undefined when the token has none (introspection may omit it). */
  readonly expiresAt: number | undefined;
  /** All claims of the source, for the minted token's claim mapping. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** SHA-256(issuer ‖ token), hex: the key of every cache entry about this token. */
  readonly tokenHash: string;
  /** What in the claims alone makes the token unfit (judged once, here, not on every use), or undefined. */
  readonly unfit: { readonly rule: string; readonly detail: string } | undefined;
}

export interface IssuerPolicy {
  readonly id: string;
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly anyAudience: boolean;
  /** Accepted introspection token_type values; empty = any but a refresh or ID token's (checkPrincipal). */
  readonly tokenTypes: readonly string[];
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/**
 * RFC 6749 §3.3's scope-token: printable ASCII but space, `"` and `\\`. A scope outside it is
 * dropped: Warden split on spaces only, so `"orders:read x\torders:admin"` granted `x\torders:admin`,
 * and minted verbatim, a backend splitting on any whitespace read `orders:admin`; an `scp` element
 * `"orders:read orders:admin"` granted both at Warden (docs/adversarial.md 270).
 */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** The granted scopes: `scope` (RFC 9068 / 7662, space-separated), else `scp` (Okta: an array; Azure AD: a space-separated string). */
function scopesOf(claims: Record<string, unknown>): Set<string> {
  const scp = claims.scp;
  const listed: unknown[] =
    typeof claims.scope === 'string' ? claims.scope.split(' ') : Array.isArray(scp) ? scp : typeof scp === 'string' ? scp.split(' ') : [];
  const scopes = new Set<string>();
  for (const s of listed) if (typeof s === 'string' && SCOPE_TOKEN.test(s)) scopes.add(s);
  return scopes;
}

/**
 * `clientRequired`: the token is a JWT without a type of its own (no `typ`, or `JWT`) from an issuer
 * without `jwt.typ`, and must name its client to be taken for an access token (unfitClaims).
 */
export function principalOf(
  claims: Record<string, unknown>,
  policy: IssuerPolicy,
  via: Principal['via'],
  tokenHash: string,
  clientRequired = false,
): Principal {
  const scopes = scopesOf(claims);
  const clientId = str(claims.client_id) ?? str(claims.azp) ?? str(claims.cid);
  const aud = claims.aud;
  return Object.freeze({
    issuerId: policy.id,
    issuer: policy.issuer,
    via,
    subject: str(claims.sub),
    clientId,
    // What the minted token says is what was checked: the scopes kept, each once.
    scope: [...scopes].join(' '),
    scopes,
    audience: typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [],
    expiresAt: typeof claims.exp === 'number' ? claims.exp : undefined,
    claims,
    tokenHash,
    unfit: unfitClaims(str(claims.sub), clientId, claims, clientRequired),
  });
}

/**
 * What the claims alone say against the token, judged when the principal is made (it is cached and
 * checked on every use; checkPrincipal reads the verdict):
 * - a control character in `sub`, the client or an actor's `sub`: the backend reads them as names,
 *   and `alice\nbob` forged a second line in its logs (docs/adversarial.md 272);
 * - an OpenID Connect ID token that does not say so in a type (`typ: JWT`, as most IdPs write both):
 *   at_hash and c_hash are ID-token claims only (OIDC Core §3.1.3.6, §3.3.2.11), and so is a nonce
 *   on a token that grants no scope; taken as an access token where a configured audience is also a
 *   client id, it was minted for (docs/adversarial.md 271);
 * - an OIDC back-channel logout token or an RFC 8417 security event token, whatever its `typ` says:
 *   both carry an `events` object (Back-Channel Logout §2.4, RFC 8417 §2.2), which no access token
 *   profile defines; an `events` that is no object (an application's list) is left alone;
 * - a JWT that says nothing of its kind (no `typ`, or `JWT`) and names no client: every access-token
 *   profile names its client (RFC 9068 and Cognito `client_id`, Okta `cid`, Keycloak, Auth0 and
 *   Azure AD v2 `azp`, Azure AD v1 `appid`), an ID token only in `aud`. oidc-provider's code-flow ID
 *   token without a nonce is exactly {sub, aud, exp, iat, iss}, untyped, and passed the test above
 *   (red team 29); `clientRequired` says the JWT is untyped and its issuer has `jwt.require_client: true` and no
 *   `jwt.typ` (jwt-verifier.ts). A token
 *   with a `scope` or `scp` is taken for an access token all the same (no ID token carries one, and
 *   a home-grown issuer's access tokens often name no client);
 * - a `sub` in the `client:` namespace, the minted sub of a token without one (minter.ts subjectOf):
 *   the user would be that client to the backend — also as a backend that trims and case-folds
 *   reads it (`" client:x"`, `"Client:x"`: namespace-reading.ts).
 */
function unfitClaims(
  subject: string | undefined,
  clientId: string | undefined,
  c: Record<string, unknown>,
  clientRequired: boolean,
): Principal['unfit'] {
  if ((subject !== undefined && CONTROL.test(subject)) || (clientId !== undefined && CONTROL.test(clientId)))
    return { rule: 'token.sub', detail: "The access token's subject or client holds a control character." };
  if (c.act !== undefined && actorWithControl(c.act))
    return { rule: 'token.act', detail: 'An actor (act.sub) of the access token holds a control character.' };
  if (c.at_hash !== undefined || c.c_hash !== undefined || (c.nonce !== undefined && c.scope === undefined && c.scp === undefined))
    return { rule: 'token.id_token', detail: 'The token is an OpenID Connect ID token, not an access token.' };
  if (typeof c.events === 'object' && c.events !== null && !Array.isArray(c.events))
    return { rule: 'token.events', detail: 'The token is a logout token or a security event token (it has events), not an access token.' };
  // A scope says access token: ID tokens carry none, custom issuers' access tokens often no client.
  if (clientRequired && clientId === undefined && str(c.appid) === undefined && c.scope === undefined && c.scp === undefined)
    return {
      rule: 'token.id_token',
      detail:
        'The token names no client (client_id, azp, cid or appid), no scope and no type of its own: an OpenID Connect ID token, not an access token.',
    };
  if (subject !== undefined && inClientNamespace(subject))
    return {
      rule: 'token.sub',
      detail: `The access token's subject reads as "${CLIENT_SUBJECT_PREFIX}…" (after blanks, under NFKC, in any letter case), which names clients here.`,
    };
  return undefined;
}

function refusal(code: ErrorCode, rule: string, detail: string, principal?: Pick<Principal, 'issuerId' | 'tokenHash'>): WardenError {
  return new WardenError(code, {
    rule,
    detail,
    ...(principal
      ? { attributes: { 'warden.token.issuer': principal.issuerId, 'warden.token.hash': principal.tokenHash.slice(0, 16) } }
      : {}),
  });
}

/**
 * Checks of an introspection answer's claims (RFC 7662 §2.2: `iss`, `nbf`, `iat`, `token_type`),
 * made when the IdP answers and when an answer is read from Redis — a verified JWT's are done by
 * jose and jwt-verifier, except audience and token use, which `checkPrincipal` repeats on every cache hit.
 */
export function checkIntrospectionClaims(
  claims: Record<string, unknown>,
  policy: IssuerPolicy,
  nowSec: number,
  leewaySec: number,
): string | undefined {
  if (claims.iss !== undefined && claims.iss !== policy.issuer) return 'iss';
  if (typeof claims.nbf === 'number' && claims.nbf > nowSec + leewaySec) return 'nbf';
  // Issued in the future (an IdP's clock far ahead): refused as a JWT's is (jwt.iat), within the same leeway.
  if (typeof claims.iat === 'number' && claims.iat > nowSec + leewaySec) return 'iat';
  if (policy.tokenTypes.length > 0 && !(typeof claims.token_type === 'string' && policy.tokenTypes.includes(claims.token_type)))
    return 'token_type';
  return undefined;
}

/** The namespace of the minted `sub` of a token without one: `client:<client id>` (minter.ts). */
export const CLIENT_SUBJECT_PREFIX = 'client:';
const inClientNamespace = namespaceReading(CLIENT_SUBJECT_PREFIX);

const ACCESS_TOKEN_USES: ReadonlySet<unknown> = new Set(['access', 'access_token']);

/** What must hold on every use of a (possibly cached) principal: not expired, meant for us, an access token. */
export function checkPrincipal(p: Principal, policy: IssuerPolicy, nowSec: number, leewaySec: number): WardenError | undefined {
  if (p.expiresAt !== undefined && nowSec >= p.expiresAt + leewaySec) {
    return refusal('ERR_AUTHN_TOKEN_EXPIRED', 'token.exp', 'The access token has expired.', p);
  }
  if (!policy.anyAudience && !p.audience.some((a) => policy.audience.includes(a))) {
    return refusal('ERR_AUTHN_TOKEN_INVALID', 'token.aud', 'The access token is not meant for this service.', p);
  }
  // The minted token names the caller by sub, else by its client: a token naming neither, or a sub
  // that is no string, would be minted for a subject the backend cannot tell apart from others.
  if (p.subject === undefined && (p.claims.sub !== undefined || p.clientId === undefined)) {
    return refusal('ERR_AUTHN_TOKEN_INVALID', 'token.sub', 'The access token names no subject (a string sub) and no client.', p);
  }
  if (p.unfit !== undefined) return refusal('ERR_AUTHN_TOKEN_INVALID', p.unfit.rule, p.unfit.detail, p);
  // AWS Cognito (`access`, `id`) and Ory Hydra's introspection (fosite's `access_token`,
  // `refresh_token`) say what a token is in token_use: anything else is not an access token.
  if (p.claims.token_use !== undefined && !ACCESS_TOKEN_USES.has(p.claims.token_use)) {
    return refusal('ERR_AUTHN_TOKEN_INVALID', 'token.token_use', 'The token is not an access token.', p);
  }
  // A refresh or ID token that says so in token_type or typ: refused whatever `token_types` lists
  // (that setting requires a type; with an empty list, refresh tokens were once accepted and minted for).
  for (const claim of ['token_type', 'typ'] as const) {
    const value = p.claims[claim];
    if (typeof value === 'string' && NOT_ACCESS_TOKEN_TYPES.has(value.toLowerCase())) {
      return refusal('ERR_AUTHN_TOKEN_INVALID', `token.${claim}`, 'The token is a refresh or ID token, not an access token.', p);
    }
  }
  return undefined;
}

/** Whether an actor of an RFC 8693 `act` chain (at most 32 deep, as claims nest) names itself with a control character. */
function actorWithControl(act: unknown): boolean {
  let actor = act;
  for (let depth = 0; depth < 32 && typeof actor === 'object' && actor !== null; depth++) {
    const { sub, act: next } = actor as { sub?: unknown; act?: unknown };
    if (typeof sub === 'string' && CONTROL.test(sub)) return true;
    actor = next;
  }
  return false;
}

/** C0 and C1 control characters, DEL, and the line and paragraph separators. */
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;

export { refusal as tokenRefusal };
