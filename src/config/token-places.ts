/**
 * The places a caller's token is read from or removed at, as sets of names: what the plan and the
 * OpenAPI loader need to know of the token sources (an apiKey scheme there is refused), without the
 * readers themselves (identity/token-sources.ts), which read names as backends do (openapi/name-readings.ts).
 */
import type { TokenSourceConfig, TokensConfig } from './types.js';

/** RFC 9449's proof header: it proves possession to this sidecar, never to the backend. */
export const DPOP_HEADER = 'dpop';

/**
 * Where the sidecar reads or removes a caller's token: the Authorization and DPoP headers (always
 * removed from what the backend gets), the minted-token header, and each source's header (lower
 * case), cookie and query parameter — and, with a cookie source, the Cookie header itself: its
 * cookies are read for the token. A credential of another kind sent there (an OpenAPI apiKey
 * scheme) would be read as a token and never reach the backend (security-requirements.ts); an
 * apiKey naming the whole Cookie header would be "sent" by the token cookie alone.
 */
export interface TokenPlaces {
  readonly headers: ReadonlySet<string>;
  readonly cookies: ReadonlySet<string>;
  readonly query: ReadonlySet<string>;
}

export function tokenPlacesOf(sources: readonly TokenSourceConfig[], mintedHeader: string | undefined): TokenPlaces {
  const headers = strippedHeaders(sources, mintedHeader);
  const cookies = new Set<string>();
  const query = new Set<string>();
  for (const s of sources) {
    if (s.from === 'cookie') cookies.add(s.name);
    if (s.from === 'query') query.add(s.name);
  }
  if (cookies.size > 0) headers.add('cookie');
  return { headers, cookies, query };
}

/** The headers removed whole from what the backend gets (a cookie source removes its cookie only). */
export function strippedHeaders(sources: readonly TokenSourceConfig[], mintedHeader: string | undefined): Set<string> {
  const headers = new Set<string>(['authorization', DPOP_HEADER]);
  if (mintedHeader) headers.add(mintedHeader.toLowerCase());
  for (const s of sources) if (s.from === 'header') headers.add(s.name.toLowerCase());
  return headers;
}

/** The places of a configuration's `tokens` section; undefined without one (no token is read at all). */
export const configuredTokenPlaces = (tokens: TokensConfig | undefined): TokenPlaces | undefined =>
  tokens && tokenPlacesOf(tokens.sources, tokens.mint.enabled ? tokens.mint.header : undefined);
