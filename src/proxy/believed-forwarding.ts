/**
 * X-Forwarded-Host and X-Forwarded-Proto that Warden believes (a trusted proxy's, listed in
 * headers.trusted_proxy_headers) go to the backend as the host and scheme the client addressed:
 * frameworks build absolute URLs from them (Koa's `app.proxy`, Express's `trust proxy`, Django's
 * USE_X_FORWARDED_HOST), and a caching front stores the pages they built. So a believed value must
 * be one host in the form Warden takes for Host (adversarial.md 200) and one scheme, `http` or
 * `https` in any case (RFC 3986 §3.1; passed on lower-cased, headers.ts); anything else is refused, not passed (red team 29 F1): `localhost@evil.example`,
 * `evil.example, 127.0.0.1` (two fields, joined by Node) and `evil.example/x?` reached the backend.
 * An unbelieved value is never checked: Warden replaces it (headers.ts).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { WardenError } from '../errors.js';
import { namesHost } from '../net/host-form.js';
import type { HeaderRules } from './headers.js';

export function checkBelievedForwarding(headers: IncomingHttpHeaders, socketAddress: string, rules: HeaderRules): WardenError | undefined {
  const host = rules.believesForwardedHost ? headers['x-forwarded-host'] : undefined;
  const proto = rules.believesForwardedProto ? headers['x-forwarded-proto'] : undefined;
  // Most requests carry neither: no address lookup for them.
  if ((host === undefined && proto === undefined) || !rules.trustedProxies.has(socketAddress)) return undefined;
  if (host !== undefined && !(typeof host === 'string' && namesHost(host))) {
    return new WardenError('ERR_REQUEST_MALFORMED', {
      rule: 'host.form',
      detail: 'The X-Forwarded-Host is not one host name or address with an optional port.',
    });
  }
  if (proto !== undefined && !(typeof proto === 'string' && isHttpScheme(proto))) {
    return new WardenError('ERR_REQUEST_MALFORMED', {
      rule: 'proto.form',
      detail: 'The X-Forwarded-Proto is not one of "https" and "http" (any case).',
    });
  }
  return undefined;
}

/** `http` or `https`, any case: a front or iRule writing `HTTPS` was a 400 on every request (review1 F5). */
function isHttpScheme(proto: string): boolean {
  const lower = proto.toLowerCase();
  return lower === 'https' || lower === 'http';
}
