/**
 * SPIFFE IDs (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md): parsing, the
 * trust domain, the ID in a certificate, and compiled allow-lists of exact IDs or `/*` prefixes.
 */

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** True for `spiffe://<trust-domain>/<path>`: lower-case trust domain, non-empty segments, no dot segments. */
export function isSpiffeId(value: string): boolean {
  if (!value.startsWith('spiffe://') || value.length > 2048) return false;
  const rest = value.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return false;
  if (!TRUST_DOMAIN.test(rest.slice(0, slash))) return false;
  const segments = rest.slice(slash + 1).split('/');
  return segments.every((s) => SEGMENT.test(s) && s !== '.' && s !== '..');
}

export function trustDomainOf(id: string): string {
  const rest = id.slice('spiffe://'.length);
  return rest.slice(0, rest.indexOf('/'));
}

/**
 * The SPIFFE ID in a certificate's subjectAltName text (Node's `X509Certificate.subjectAltName` or
 * `PeerCertificate.subjectaltname`, e.g. `URI:spiffe://td/ns/a/sa/b, DNS:api`): exactly one URI SAN,
 * and it must be a valid SPIFFE ID (an X.509-SVID has one), else undefined.
 */
export function spiffeIdOfSubjectAltName(subjectAltName: string | undefined): string | undefined {
  if (!subjectAltName) return undefined;
  let found: string | undefined;
  for (const entry of subjectAltName.split(', ')) {
    if (!entry.startsWith('URI:')) continue;
    if (found !== undefined) return undefined; // more than one URI SAN: not an SVID
    found = entry.slice(4);
  }
  return found !== undefined && isSpiffeId(found) ? found : undefined;
}

/**
 * An allow-list matcher: `spiffe://td/ns/payments/sa/api` matches itself only;
 * `spiffe://td/ns/payments/*` matches every ID below `spiffe://td/ns/payments/` (not `…/paymentsX`).
 */
export function compileSpiffeMatcher(patterns: readonly string[]): (id: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const p of patterns) {
    if (p.endsWith('/*')) prefixes.push(p.slice(0, -1));
    else exact.add(p);
  }
  return (id) => {
    if (exact.has(id)) return true;
    for (const prefix of prefixes) if (id.startsWith(prefix) && id.length > prefix.length) return true;
    return false;
  };
}
