/**
 * token_type / typ values (lower case) of tokens that are not access tokens: RFC 7009's and RFC
 * 8693's names of refresh and ID tokens, and Keycloak's `typ` (TokenUtil: `Refresh`, `Offline`,
 * `ID`, `Serialized-ID`, `Logout`; `Bearer` and `DPoP` are its access tokens). Refused on every use
 * (src/identity/principal.ts), as a JWT's JOSE `typ` too (src/identity/jwt-kind.ts), and never a
 * type `introspection.token_types` may require.
 */
export const NOT_ACCESS_TOKEN_TYPES: ReadonlySet<string> = new Set([
  'refresh_token',
  'id_token',
  'urn:ietf:params:oauth:token-type:refresh_token',
  'urn:ietf:params:oauth:token-type:id_token',
  'refresh',
  'offline',
  'id',
  'serialized-id',
  'logout',
]);
