/**
 * How a client knows the server it reached is the Warden CA: chaining to the trust bundle is not
 * enough (every workload certificate chains to it too, and a workload may hold the CA's DNS name),
 * so it must also carry the CA's own SPIFFE ID, `spiffe://<trust-domain>/warden/ca`, which no
 * workload can get. Used by the sidecars' CA client and by the admin CLI.
 */
import { checkServerIdentity as checkHostName, type PeerCertificate } from 'node:tls';
import { parseSpiffeId, spiffeIdOfCertificate } from '../net/spiffe-id.js';
import { serverSpiffeId } from './layout.js';

/** The server chains to our roots and has the right host name, but is not the CA (a workload posing as it). */
export class NotTheCaError extends Error {
  readonly code = 'ERR_CA_IDENTITY_MISMATCH';
  constructor(
    readonly presented: string | undefined,
    expected: string,
  ) {
    super(`the server's certificate names ${presented ?? 'no SPIFFE ID'}, not the CA's ${expected}`);
    this.name = 'NotTheCaError';
  }
}

/**
 * The CA's SPIFFE ID for a sidecar of `trustDomain`. Without one (a caller that does not know its
 * trust domain) any trust domain's `/warden/ca` is accepted: the roots still pin the CA.
 */
function caIdentity(trustDomain: string | undefined): { expected: string; matches(id: string | undefined): boolean } {
  if (trustDomain !== undefined) {
    const expected = serverSpiffeId(trustDomain);
    return { expected, matches: (id) => id === expected };
  }
  return {
    expected: serverSpiffeId('<trust-domain>'),
    matches: (id) => id !== undefined && parseSpiffeId(id).path === '/warden/ca',
  };
}

/** Node's host name check, then the CA's SPIFFE ID: for `connect.checkServerIdentity` of every CA agent. */
export function checkCaIdentity(trustDomain: string | undefined) {
  const identity = caIdentity(trustDomain);
  return (host: string, cert: PeerCertificate): Error | undefined => {
    const hostError = checkHostName(host, cert);
    if (hostError) return hostError;
    const presented = spiffeIdOfCertificate(cert);
    return identity.matches(presented) ? undefined : new NotTheCaError(presented, identity.expected);
  };
}
