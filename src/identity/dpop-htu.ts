/**
 * A DPoP proof's `htu` against the request it came with (RFC 9449 §4.3 check 9): the URI the client
 * used, without query and fragment. Both sides are normalised before they are compared, as §4.3
 * recommends (RFC 3986 §6.2.2 syntax-based, §6.2.3 scheme-based):
 *
 * - scheme and host compare case-insensitively and a default port equals none (`https://API:443`
 *   is `https://api`): the WHATWG URL parser writes both that way;
 * - the path goes through the sidecar's own request-target normalisation (src/net/request-target.ts:
 *   unreserved escapes decoded, dot segments resolved, `//` collapsed), so it is compared with the
 *   path routing and policy saw, not with a spelling of it;
 * - the expected scheme and authority are what the client addressed: `https` and its Host /
 *   `:authority`, or what a trusted proxy in front says (`X-Forwarded-Proto` / `-Host`, believed
 *   only from `headers.trusted_proxies` and when `headers.trusted_proxy_headers` lists them, as for
 *   the backend's copies of them).
 */
import { WardenError } from '../errors.js';
import { normaliseTarget } from '../net/request-target.js';

export interface RequestUri {
  /** `https`, or a trusted proxy's X-Forwarded-Proto when believed. */
  readonly scheme: string | undefined;
  /** Host / :authority, or a trusted proxy's X-Forwarded-Host when believed. */
  readonly authority: string | undefined;
  /** The normalised path (RequestContext.path). */
  readonly path: string;
}

const originOf = (url: URL): string => `${url.protocol}//${url.host}`;

export function htuMatches(htu: string, request: RequestUri): boolean {
  if (request.scheme === undefined || request.authority === undefined) return false;
  let claimed: URL;
  let expected: URL;
  try {
    claimed = new URL(htu);
    expected = new URL(`${request.scheme}://${request.authority}/`);
  } catch {
    return false;
  }
  if (claimed.username !== '' || claimed.password !== '') return false;
  if (originOf(claimed) !== originOf(expected)) return false;
  const target = normaliseTarget(claimed.pathname);
  return !(target instanceof WardenError) && target.path === request.path;
}
