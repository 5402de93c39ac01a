/**
 * Which SPIFFE IDs an egress destination may be. Egress reaches workloads of this mesh only: the
 * CA's own identities (`/warden/…`) are not workloads, and an egress to the CA let the backend —
 * which never holds the workload key — renew this workload's identity with a key of its own; an ID
 * of another trust domain never chains to this mesh's roots, so no call to it could ever connect.
 */
import { isReservedSpiffePath, parseSpiffeId, spiffeIdProblem } from './spiffe-id.js';

/** Why `spiffeId` cannot be an egress destination in `trustDomain`, or undefined when it can. */
export function destinationIdProblem(spiffeId: string, trustDomain: string): string | undefined {
  // The schema's pattern lets dot segments through (`/ns/../warden/ca`); parsing refuses them.
  const invalid = spiffeIdProblem(spiffeId);
  if (invalid !== undefined) return `is not a SPIFFE ID (${invalid})`;
  const id = parseSpiffeId(spiffeId);
  if (id.trustDomain !== trustDomain) return `is in trust domain "${id.trustDomain}", not the mesh's "${trustDomain}"`;
  if (isReservedSpiffePath(id.path)) return `is under /warden/, reserved for the CA's own identities (not a workload)`;
  return undefined;
}
