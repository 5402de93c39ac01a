/**
 * A destination's redirect, as the backend's HTTP client will follow it. Egress calls carry this
 * workload's identity, so a Location that leads the client back into egress — or to anything else
 * on this machine (the admin listener) — would have one destination make this workload call another
 * service: a destination pinned as `sa/evil` sent `307 Location: http://127.0.0.1:15001/c/admin/delete`,
 * and a client following redirects (curl -L, Python requests) POSTed there as this workload, where
 * `sa/evil` itself was refused. Such a Location is refused. One that resolves inside the destination
 * is kept inside it: in path form (`/payments/…`) `/login` would have led to a service named `login`.
 *
 * The Location is resolved as a WHATWG client resolves it (`http:/ledger/x` is relative, `\` is `/`,
 * tabs and newlines are dropped), and what goes to the backend is that resolution, never the raw
 * value: a spelling read one way here and another by the client was a way around the check.
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { WardenError } from '../errors.js';
import { createIpSet, type IpSet } from '../net/ip-set.js';
import { isLoopbackHost } from '../net/loopback.js';

/**
 * Addresses that reach this machine whatever its interfaces: loopback, and "this host" (0.0.0.0/8,
 * `::`), which Linux connects to itself; IPv4-mapped spellings (`[::ffff:0:0]`) match too.
 */
const THIS_MACHINE = createIpSet(['0.0.0.0/8', '::/128', '127.0.0.0/8', '::1']);

/** Stands for the destination's origin while resolving (no real host is named so). */
const DESTINATION = 'destination.invalid';

/**
 * The Location to pass to the backend (rewritten into `/<service>/…` for a path-form call), or the
 * refusal. `services`: the egress services by name (a proxy-form client sends `http://<name>/…` to egress).
 */
export function egressLocation(
  location: string,
  call: { status: number; service: string; path: string; pathForm: boolean },
  services: ReadonlySet<string>,
): string | WardenError {
  const base = `http://${DESTINATION}${call.path.startsWith('/') ? call.path : `/${call.path}`}`;
  if (!URL.canParse(location, base)) return refused('a Location that is no URL');
  const target = new URL(location, base);
  if (target.host === DESTINATION) {
    // Inside the destination: under its service in path form, as the client would read it otherwise.
    const rest = `${target.pathname}${target.search}${target.hash}`;
    return call.pathForm ? `/${call.service}${rest}` : rest;
  }
  // Only a redirect is followed by clients on their own; a 201's Location is the caller's to use.
  if (call.status < 300 || call.status > 399) return location;
  const name = target.hostname.toLowerCase();
  const otherService = services.has(name) && name !== call.service;
  if (otherService) return refused(`a redirect to the egress service ${name}`);
  if (namesThisMachine(name)) return refused('a redirect to this machine');
  return target.href;
}

/**
 * Whether a URL's host name leads to this machine: a loopback name (`localhost`, `*.localhost`),
 * an address of THIS_MACHINE, or one of this host's own interfaces (the pod IP, where an admin
 * listener bound to 0.0.0.0 answers). Decided by address, not spelling: `[::ffff:0:0]` is 0.0.0.0,
 * and a string comparison let it through (as it let the pod IP's mapped form, `[::ffff:c000:202]`).
 */
function namesThisMachine(hostname: string): boolean {
  const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (isIP(bare) === 0) return isLoopbackHost(hostname);
  return THIS_MACHINE.has(bare) || ownAddresses().has(bare);
}

/** This host's interface addresses as an IpSet (which also matches their IPv4-mapped forms, `[::ffff:c000:202]`), read at most once a second. */
let own: { set: IpSet; readAt: number } | undefined;
function ownAddresses(): IpSet {
  const now = Date.now();
  if (own === undefined || now - own.readAt > 1000) {
    const addresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address.split('%', 1)[0] as string));
    own = { set: createIpSet(addresses), readAt: now };
  }
  return own.set;
}

function refused(what: string): WardenError {
  return new WardenError('ERR_UPSTREAM_PROTOCOL', {
    rule: 'egress.redirect',
    detail: `The destination answered with ${what}: a redirect out of the destination is not followed with this workload's identity.`,
  });
}
