/**
 * Whether a JWT's JOSE `typ` says it is some kind of token other than an access token, for issuers
 * without a configured `jwt.typ` (which, when set, alone decides: jose compares it).
 *
 * RFC 8725 §3.11 (explicit typing) names each kind of JWT by a media type with the `+jwt` suffix:
 * `logout+jwt` (OIDC Back-Channel Logout), `secevent+jwt` (RFC 8417), `token-introspection+jwt`
 * (RFC 9701), `dpop+jwt` (RFC 9449), `oauth-authz-req+jwt` (RFC 9101), … One minted for another
 * purpose by an IdP Warden trusts, under an audience it accepts (an app registration that is both
 * the SPA's client id and its API), was minted for as an access token (red team 27c).
 *
 * A deny rule by kind, not an allow-list: access tokens are typed many ways (none, `JWT`, `at+jwt`
 * as RFC 9068 says, Okta's `application/okta-internal-at+jwt`, the IDS DAPS's `jwt+at`, home-grown
 * authorization servers' `access-token+jwt`), and refusing every other `+jwt` refused those (review
 * of row 450). Refused: the kinds registered or specified for other purposes (below, and any type
 * naming a logout, security event, ID token, introspection answer, DPoP proof, request object,
 * attestation, key-binding or credential), the names of non-access tokens `token-kinds.ts` lists
 * (`Refresh`, `id_token`, …), with or without `application/`, in any case; and a `typ` that is not a
 * string. An issuer whose access tokens carry a type refused here sets `jwt.typ`.
 */
import { NOT_ACCESS_TOKEN_TYPES } from '../config/token-kinds.js';

const MEDIA_TYPE_PREFIX = 'application/';

/**
 * Words in the stem of a `+jwt` type that name a token of another purpose: OIDC logout tokens,
 * security events (RFC 8417), ID tokens, refresh and offline tokens, DPoP proofs (RFC 9449) — these
 * four as words of their own (`valid-token` is none) —, signed introspection answers (RFC 9701),
 * request objects (RFC 9101, `oauth-authz-req`), client authentication assertions (rfc7523bis),
 * identity assertion grants (`oauth-id-jag`), client/wallet/key attestations, OpenID Federation
 * statements and trust marks, OpenID4VCI proofs. Fixed words, no repetition: one pass over the
 * stem (a tail like `[^/]*\+jwt$` after each word was quadratic on `logout` × 200 000).
 */
const OTHER_PURPOSE =
  /logout|secevent|(?:^|[-_.])(?:id[-_]?token|refresh|offline|dpop)(?:[-_.]|$)|introspection|authz-req|client-authentication|id-jag|attestation|entity-statement|trust-mark|openid4vci-proof/;
/** SD-JWT key binding (`kb+jwt`), verifiable credentials and presentations (`vc+jwt`, `vp+jwt`). */
const CREDENTIAL_STEMS: ReadonlySet<string> = new Set(['kb', 'vc', 'vp']);
/**
 * `at` as a word of the stem says access token, whatever else it says: `at+jwt`, Okta's
 * `okta-internal-at`, a DPoP-bound `at-dpop`, `refreshable-at` (third review rt27, F4).
 */
const ACCESS_TOKEN_WORD = /(?:^|[-_.])at(?:[-_.]|$)/;
const JWT_SUFFIX = '+jwt';

export function namesOtherKind(typ: unknown): boolean {
  if (typ === undefined) return false;
  if (typeof typ !== 'string') return true;
  const lower = typ.toLowerCase();
  const kind = lower.startsWith(MEDIA_TYPE_PREFIX) ? lower.slice(MEDIA_TYPE_PREFIX.length) : lower;
  if (NOT_ACCESS_TOKEN_TYPES.has(kind) || kind.endsWith('+sd-jwt')) return true;
  if (!kind.endsWith(JWT_SUFFIX)) return false;
  const stem = kind.slice(0, -JWT_SUFFIX.length);
  if (ACCESS_TOKEN_WORD.test(stem)) return false;
  return CREDENTIAL_STEMS.has(stem) || NOT_ACCESS_TOKEN_TYPES.has(stem) || OTHER_PURPOSE.test(stem);
}

/**
 * A JOSE `typ` that says nothing of the token's kind: none, or `JWT` (RFC 7519 §5.1), in any case,
 * with or without `application/`. What ID tokens carry (oidc-provider: none; Keycloak, Azure AD: `JWT`).
 */
export function isUntyped(typ: unknown): boolean {
  if (typ === undefined) return true;
  if (typeof typ !== 'string') return false;
  const lower = typ.toLowerCase();
  return lower === 'jwt' || lower === `${MEDIA_TYPE_PREFIX}jwt`;
}
