/**
 * The authenticated caller, as stages after authn see it, built from an introspection answer or a
 * verified JWT payload. The checks that do not depend on how the token was verified (issuer,
 * audience, times, token use) live here so both paths apply them the same way.
 */
import { NOT_ACCESS_TOKEN_TYPES } from '../config/token-kinds.js';
import { WardenError, type ErrorCode } from '../errors.js';

export interface Principal {
  readonly issuerId: string;
  readonly issuer: string;
  readonly via: 'jwt' | 'introspection';
  readonly subject: string | undefined;
  readonly clientId: string | undefined;
  /** The granted scopes, space-joined as in the `scope` claim. */
  readonly scope: string;
  readonly scopes: ReadonlySet<string>;
  readonly audience: readonly string[];
  /** `exp` in seconds since the epoch; undefined when the token has none (introspection may omit it). */
  readonly expiresAt: number | undefined;
  /** All claims of the source, for the minted token's claim mapping. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** SHA-256(issuer ‖ token), hex: the key of every cache entry about this token. */
  readonly tokenHash: string;
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

export function principalOf(claims: Record<string, unknown>, policy: IssuerPolicy, via: Principal['via'], tokenHash: string): Principal {
  // `scope` (RFC 9068 / 7662, space-separated), else `scp` (Okta: an array; Azure AD: a space-separated string).
  const scp = claims.scp;
  const scope =
    typeof claims.scope === 'string'
      ? claims.scope
      : Array.isArray(scp)
        ? scp.filter((s) => typeof s === 'string').join(' ')
        : typeof scp === 'string'
          ? scp
          : '';
  const aud = claims.aud;
  return Object.freeze({
    issuerId: policy.id,
    issuer: policy.issuer,
    via,
    subject: str(claims.sub),
    clientId: str(claims.client_id) ?? str(claims.azp) ?? str(claims.cid),
    scope,
    scopes: new Set(scope.split(' ').filter((s) => s.length > 0)),
    audience: typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [],
    expiresAt: typeof claims.exp === 'number' ? claims.exp : undefined,
    claims,
    tokenHash,
  });
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
  // `client:<id>` is the minted sub of a token without one (minter.ts subjectOf): a user whose sub is
  // spelled so would be that client to the backend.
  if (p.subject !== undefined && p.subject.startsWith(CLIENT_SUBJECT_PREFIX)) {
    return refusal(
      'ERR_AUTHN_TOKEN_INVALID',
      'token.sub',
      `The access token's subject begins with "${CLIENT_SUBJECT_PREFIX}", which names clients here.`,
      p,
    );
  }
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

export { refusal as tokenRefusal };
