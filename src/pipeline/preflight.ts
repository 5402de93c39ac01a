/**
 * CORS preflights (Fetch standard §4.8): `OPTIONS` with `Origin` and `Access-Control-Request-Method`,
 * sent by a browser before a non-simple cross-origin call, always without credentials. Under
 * `routing.cors_preflight: forward` such a request goes to the backend (whose CORS handling
 * answers it) under the preflight policy of the route that takes the method it announces: no
 * authentication, no body (docs/proxy.md § CORS preflights).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { WardenError } from '../errors.js';

/**
 * Credentials no browser sends on a preflight. One that carries any is not taken for a preflight
 * (it is routed as any OPTIONS): a token or cookie would otherwise reach the backend unchecked.
 */
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'dpop'] as const;

/** Where else a caller's credential may come: configured token headers, API-key headers and query names. */
export interface PreflightCredentials {
  /** Where the sidecar reads a token (config/token-places.ts) and OpenAPI API-key headers (lower case). */
  readonly headers: readonly string[];
  /** Query token sources and OpenAPI API keys `in: query`. */
  readonly queryNames: readonly string[];
}

/**
 * The method an exact preflight announces, undefined for any other request: one carrying a
 * credential anywhere Warden reads one (a header; or, where a query token source or API key is
 * configured, any query: the preflight plan checks none, and the backend would get it unchecked)
 * is routed as any OPTIONS. Called for OPTIONS only.
 */
export function preflightMethodOf(headers: IncomingHttpHeaders, search: string, credentials: PreflightCredentials): string | undefined {
  const asked = headers['access-control-request-method'];
  if (headers.origin === undefined || typeof asked !== 'string' || asked === '') return undefined;
  for (const name of CREDENTIAL_HEADERS) if (headers[name] !== undefined) return undefined;
  for (const name of credentials.headers) if (headers[name] !== undefined) return undefined;
  // Any query at all, where a credential may come in one: backends read a name in spellings an
  // exact test misses (`access.token` is PHP's `access_token`; review rt29-3).
  if (search.length > 1 && credentials.queryNames.length > 0) return undefined;
  return asked;
}

/** A preflight with a body: a browser sends none, and the backend's CORS handling reads none. */
export function preflightBodyRefusal(): WardenError {
  return new WardenError('ERR_REQUEST_MALFORMED', {
    rule: 'cors.preflight_body',
    detail: 'A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) carries no body.',
  });
}
