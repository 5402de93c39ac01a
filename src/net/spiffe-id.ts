/**
 * SPIFFE IDs (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md): parsing, the
 * trust domain, the ID in a certificate, and compiled allow-lists of exact IDs or `/*` prefixes.
 * Workload IDs only: a path is required (an X.509-SVID of a workload never names just the domain).
 */
import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

// The spec's character sets leave no room for port, userinfo, query, fragment or percent-encoding.
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_LENGTH = 2048;

export interface SpiffeId {
  trustDomain: string;
  /** `/ns/shop/sa/orders` */
  path: string;
}

export class SpiffeIdError extends Error {
  readonly code = 'ERR_SPIFFE_ID_INVALID';
  constructor(value: string, reason: string) {
    super(`"${value.length > 80 ? `${value.slice(0, 80)}…` : value}" is not a SPIFFE ID: ${reason}`);
    this.name = 'SpiffeIdError';
  }
}

/** Why `value` is not a workload SPIFFE ID, or undefined when it is one. */
function invalidity(value: string): string | undefined {
  if (!value.startsWith('spiffe://')) return 'the scheme must be spiffe:// (lower case)';
  if (value.length > MAX_LENGTH) return `longer than ${MAX_LENGTH} bytes`;
  const rest = value.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  if (slash === 0) return 'empty trust domain';
  if (slash < 0) return 'no path (spiffe://<trust-domain>/<path>)';
  if (!TRUST_DOMAIN.test(rest.slice(0, slash))) return 'the trust domain allows only a-z 0-9 . - _ (no port, userinfo or upper case)';
  for (const segment of rest.slice(slash + 1).split('/')) {
    if (segment === '') return 'empty path segment';
    if (segment === '.' || segment === '..') return 'dot segment in the path';
    if (!SEGMENT.test(segment)) return 'a path segment allows only A-Z a-z 0-9 . - _ (no query, fragment or percent-encoding)';
  }
  return undefined;
}

/** True for `spiffe://<trust-domain>/<path>`: lower-case trust domain, non-empty segments, no dot segments. */
export function isSpiffeId(value: string): boolean {
  return invalidity(value) === undefined;
}

/** Why `value` is not a workload SPIFFE ID (for an error message), or undefined when it is one. */
export function spiffeIdProblem(value: string): string | undefined {
  return invalidity(value);
}

/** Splits a SPIFFE ID; throws SpiffeIdError (with the reason) when `value` is not one. */
export function parseSpiffeId(value: string): SpiffeId {
  const reason = invalidity(value);
  if (reason !== undefined) throw new SpiffeIdError(value, reason);
  const rest = value.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  return { trustDomain: rest.slice(0, slash), path: rest.slice(slash) };
}

/** The trust domain of an ID already known to be valid (no re-validation: hot path). */
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
  // Node JSON-quotes SAN entries holding ", " or quotes, so a DNS name cannot smuggle in a URI
  // entry: the split piece keeps a quote and fails validation.
  return found !== undefined && isSpiffeId(found) ? found : undefined;
}

/** The SPIFFE ID of a Node `X509Certificate` or a `tls.PeerCertificate` (see spiffeIdOfSubjectAltName). */
export function spiffeIdOfCertificate(cert: X509Certificate | PeerCertificate | undefined): string | undefined {
  if (!cert) return undefined;
  return spiffeIdOfSubjectAltName('subjectAltName' in cert ? cert.subjectAltName : cert.subjectaltname);
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

/**
 * Whether a SPIFFE ID path (of an ID already parsed, so without dot segments) is under `/warden`,
 * reserved for the CA's own identities (its administrator, its server; src/ca/layout.ts): never
 * issued to a workload, never admitted as one. In any letter case: `/Warden/admin` granted nothing
 * (the CA's checks are exact) but read as the CA's administrator in logs and events (red team 28).
 */
export const isReservedSpiffePath = (path: string): boolean => {
  if (path.length < 7 || path.charCodeAt(0) !== 0x2f) return false;
  const head = path.slice(0, 8).toLowerCase();
  return head === '/warden' || head === '/warden/';
};
