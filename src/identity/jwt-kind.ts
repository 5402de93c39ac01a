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
 * Refused: any such structured-suffix type but an access token's, and the names of non-access
 * tokens `token-kinds.ts` lists (`Refresh`, `id_token`, …), with or without `application/`, in any
 * case; and a `typ` that is not a string. Passed: none, `JWT`, `JOSE` and other plain names (what
 * Keycloak, Azure AD, Ping and Auth0's default write), `at+jwt` (RFC 9068), and a vendor's access
 * token type ending in `-at+jwt` (Okta's `application/okta-internal-at+jwt`). A deny rule by kind,
 * not an allow-list of names: the IdPs' own spellings of access tokens keep working.
 */
import { NOT_ACCESS_TOKEN_TYPES } from '../config/token-kinds.js';

const MEDIA_TYPE_PREFIX = 'application/';

export function namesOtherKind(typ: unknown): boolean {
  if (typ === undefined) return false;
  if (typeof typ !== 'string') return true;
  const lower = typ.toLowerCase();
  const kind = lower.startsWith(MEDIA_TYPE_PREFIX) ? lower.slice(MEDIA_TYPE_PREFIX.length) : lower;
  if (kind === 'at+jwt' || kind.endsWith('-at+jwt')) return false;
  return kind.includes('+') || NOT_ACCESS_TOKEN_TYPES.has(kind);
}
