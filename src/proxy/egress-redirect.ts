/**
 * A destination's redirect, as the backend's HTTP client will follow it. Egress calls carry this
 * workload's identity, so a Location that leads the client back into egress — or to anything else
 * on loopback (the admin listener) — would have one destination make this workload call another
 * service: a destination pinned as `sa/evil` sent `307 Location: http://127.0.0.1:15001/c/admin/delete`,
 * and a client following redirects (curl -L, Python requests) POSTed there as this workload, where
 * `sa/evil` itself was refused. Such a Location is refused; one relative to the destination is
 * kept inside it: in path form (`/payments/…`) `/login` would have led to a service named `login`.
 */
import { WardenError } from '../errors.js';
import { isLoopbackHost } from '../net/loopback.js';

const ANY_HOST = 'http://egress.invalid';

/**
 * The Location to pass to the backend (rewritten into `/<service>/…` for a path-form call), or the
 * refusal. `services`: the egress services by name (a proxy-form client sends `http://<name>/…` to egress).
 */
export function egressLocation(
  location: string,
  call: { status: number; service: string; path: string; pathForm: boolean },
  services: ReadonlySet<string>,
): string | WardenError {
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(location) || location.startsWith('//');
  // Only a redirect is followed by clients on their own; a 201's Location is the caller's to use.
  if (absolute && (call.status < 300 || call.status > 399)) return location;
  if (absolute) {
    const target = URL.canParse(location, ANY_HOST) ? new URL(location, ANY_HOST) : undefined;
    if (target === undefined) return refused('a Location that is no URL');
    const host = target.host;
    const other = services.has(target.hostname.toLowerCase()) && target.hostname.toLowerCase() !== call.service;
    if (isLoopbackHost(host) || other)
      return refused(`a redirect to ${other ? `the egress service ${target.hostname}` : 'this machine (loopback)'}`);
    return location;
  }
  if (!call.pathForm) return location; // resolved against http://<service>/…: it stays in the service
  const base = `${ANY_HOST}${call.path.startsWith('/') ? call.path : `/${call.path}`}`;
  if (!URL.canParse(location, base)) return refused('a Location that is no URL');
  const resolved = new URL(location, base);
  return `/${call.service}${resolved.pathname}${resolved.search}${resolved.hash}`;
}

function refused(what: string): WardenError {
  return new WardenError('ERR_UPSTREAM_PROTOCOL', {
    rule: 'egress.redirect',
    detail: `The destination answered with ${what}: a redirect out of the service it is is not followed with this workload's identity.`,
  });
}
