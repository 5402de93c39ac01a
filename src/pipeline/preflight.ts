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

/**
 * The method an exact preflight announces, undefined for any other request. `tokenHeaders`: the
 * configured token headers beyond Authorization and Cookie (lower case). Called for OPTIONS only.
 */
export function preflightMethodOf(headers: IncomingHttpHeaders, tokenHeaders: readonly string[]): string | undefined {
  const asked = headers['access-control-request-method'];
  if (headers.origin === undefined || typeof asked !== 'string' || asked === '') return undefined;
  for (const name of CREDENTIAL_HEADERS) if (headers[name] !== undefined) return undefined;
  for (const name of tokenHeaders) if (headers[name] !== undefined) return undefined;
  return asked;
}

/** A preflight with a body: a browser sends none, and the backend's CORS handling reads none. */
export function preflightBodyRefusal(): WardenError {
  return new WardenError('ERR_REQUEST_MALFORMED', {
    rule: 'cors.preflight_body',
    detail: 'A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) carries no body.',
  });
}
