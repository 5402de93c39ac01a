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
 * value: a spelling read one way here and another by the client was a way around the check. In proxy
 * form it goes back absolute (`http://<service>/…`): as a path, `/.//ledger/x` resolved to
 * `//ledger/x`, which a client reads as a network-path reference to the service `ledger`.
 *
 * A redirect to a host name is checked by resolving that name as the client will (checkNamedLocation):
 * `/etc/hosts` maps names such as the machine's own to 127.0.0.1, and the pod's host name to the pod IP.
 */
import { lookup } from 'node:dns/promises';
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

/** A redirect to a host name: passed as `href` once `hostname` is known not to lead to this machine. */
export interface NamedLocation {
  readonly href: string;
  readonly hostname: string;
}

/**
 * The Location to pass to the backend (`/<service>/…` for a path-form call, `http://<service>/…` for
 * a proxy-form one), the refusal, or a redirect to a host name, which checkNamedLocation decides.
 * `services`: the egress services by name (a proxy-form client sends `http://<name>/…` to egress).
 */
export function egressLocation(
  location: string,
  call: { status: number; service: string; path: string; pathForm: boolean },
  services: ReadonlySet<string>,
): string | WardenError | NamedLocation {
  const base = `http://${DESTINATION}${call.path.startsWith('/') ? call.path : `/${call.path}`}`;
  if (!URL.canParse(location, base)) return refused('a Location that is no URL');
  const target = new URL(location, base);
  if (target.host === DESTINATION) {
    // Inside the destination, always with its service before the path: a path alone starting `//`
    // (`/.//ledger/x`, `/x/..//ledger/x`, `/%2e//ledger`) is another host to the client.
    const rest = `${target.pathname}${target.search}${target.hash}`;
    return call.pathForm ? `/${call.service}${rest}` : `http://${call.service}${rest}`;
  }
  // Only a redirect is followed by clients on their own; a 201's Location is the caller's to use.
  if (call.status < 300 || call.status > 399) return location;
  const name = target.hostname.toLowerCase();
  const otherService = services.has(name) && name !== call.service;
  if (otherService) return refused(`a redirect to the egress service ${name}`);
  if (namesThisMachine(name)) return refused('a redirect to this machine');
  // A name other than the egress services' is resolved before the client follows it
  // (checkNamedLocation): only where clients follow on their own, to a host they would connect to.
  const bare = name.startsWith('[') ? name.slice(1, -1) : name;
  const followed = FOLLOWED.has(call.status) && WEB_SCHEMES.has(target.protocol) && name !== '';
  if (followed && isIP(bare) === 0 && !services.has(name)) return { href: target.href, hostname: name };
  return target.href;
}

/** The statuses clients follow by themselves (a 300's choices and a 304's Location are not). */
const FOLLOWED: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
/** Schemes an HTTP client follows to a host (`myapp://callback`, `mailto:` name none to connect to). */
const WEB_SCHEMES: ReadonlySet<string> = new Set(['http:', 'https:', 'ws:', 'wss:']);

/** Resolves a host name as the backend's client will: getaddrinfo, which reads /etc/hosts. */
export type HostLookup = (hostname: string) => Promise<readonly string[]>;

const systemLookup: HostLookup = async (hostname) => (await lookup(hostname, { all: true })).map((a) => a.address);

/** How long a redirect's host name may take to resolve, its wait for a turn included; then the redirect is refused. */
export const NAME_LOOKUP_MS = 1000;
/**
 * Lookups in progress at once. getaddrinfo holds a libuv thread (4 by default, shared with file and
 * crypto work) until it ends, past NAME_LOOKUP_MS when DNS does not answer: a destination answering
 * redirects to slow names would otherwise hold them all. Others wait their turn (at most
 * MAX_WAITING, within NAME_LOOKUP_MS), and a name resolved in the last few seconds is not resolved
 * again (a file service redirecting every download to presigned URLs of one object store).
 */
export const MAX_NAME_LOOKUPS = 2;
const MAX_WAITING = 64;
const REMEMBER_MS = 5000;
const REMEMBERED = 256;
let lookups = 0;
const waiting: (() => void)[] = [];
/** Names resolved lately: their addresses, or none for a name that does not exist. */
const remembered = new Map<string, { addresses: readonly string[]; at: number }>();

/** Errors that say the name does not exist (the client, on the same resolver, reaches nothing by it). */
const NO_SUCH_NAME: ReadonlySet<string> = new Set(['ENOTFOUND', 'ENODATA']);

/** One name's addresses ([] when it does not exist), remembered a few seconds; other failures throw. */
async function addressesOf(hostname: string, resolve: HostLookup): Promise<readonly string[]> {
  // Only the system's answers are remembered (a test's resolver answers for itself).
  const remember = resolve === systemLookup;
  const known = remember ? remembered.get(hostname) : undefined;
  if (known !== undefined && Date.now() - known.at < REMEMBER_MS) return known.addresses;
  let addresses: readonly string[];
  try {
    addresses = await resolve(hostname);
  } catch (err) {
    if (!NO_SUCH_NAME.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    addresses = [];
  }
  if (!remember) return addresses;
  if (remembered.size >= REMEMBERED) remembered.clear();
  remembered.set(hostname, { addresses, at: Date.now() });
  return addresses;
}

/**
 * Runs `work` when fewer than MAX_NAME_LOOKUPS run; false when too many wait already. `leave` takes a
 * waiter out of the queue once its caller has given up: left in, each ran its lookup later all the
 * same, holding a turn for the resolver's whole timeout (10 s), and 66 redirects to a silent domain
 * refused every destination's redirects for minutes (red-team round 21a).
 */
function inTurn<T>(work: () => Promise<T>): { pending: Promise<T>; leave(): void } | false {
  if (lookups < MAX_NAME_LOOKUPS) {
    lookups++;
    return { pending: work().finally(done), leave: () => undefined };
  }
  if (waiting.length >= MAX_WAITING) return false;
  let start!: () => void;
  const pending = new Promise<T>((settle, fail) => {
    start = () => {
      lookups++;
      work().then(settle, fail).finally(done);
    };
  });
  waiting.push(start);
  return {
    pending,
    leave() {
      const at = waiting.indexOf(start);
      if (at !== -1) waiting.splice(at, 1);
    },
  };
}
function done(): void {
  lookups--;
  waiting.shift()?.();
}

/** The system's answers for every spelling, when all are remembered and fresh: no turn needed. */
function rememberedFor(spellings: readonly string[]): readonly string[] | undefined {
  const now = Date.now();
  const found: string[] = [];
  for (const name of spellings) {
    const known = remembered.get(name);
    if (known === undefined || now - known.at >= REMEMBER_MS) return undefined;
    found.push(...known.addresses);
  }
  return found;
}

/**
 * The Location of a redirect to a host name, or the refusal when any address the name resolves to is
 * this machine's (`vm` → 127.0.0.1 in /etc/hosts reached a loopback-only service), or when it cannot
 * be resolved in time: fail closed. A name that does not exist passes, as it did: the client, on the
 * same resolver, reaches nothing by it. `vm.` is looked up as `vm` too: glibc does not read a name
 * with its final dot in /etc/hosts, Go's resolver does. A DNS server may answer the client otherwise
 * (rebinding); turning automatic redirects off in the backend stays the advice.
 */
export async function checkNamedLocation(named: NamedLocation, resolve: HostLookup = systemLookup): Promise<string | WardenError> {
  const { hostname } = named;
  const spellings = hostname.endsWith('.') ? [hostname, hostname.slice(0, -1)] : [hostname];
  const known = resolve === systemLookup ? rememberedFor(spellings) : undefined;
  if (known !== undefined) return verdictFor(named, known);
  const turn = inTurn(async () => (await Promise.all(spellings.map((name) => addressesOf(name, resolve)))).flat());
  if (turn === false) return refused(`a redirect to ${hostname} while too many other redirects' names were being resolved`);
  const { pending } = turn;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((settle) => {
    timer = setTimeout(() => settle('late'), NAME_LOOKUP_MS);
  });
  try {
    const addresses = await Promise.race([pending, late]);
    if (addresses === 'late') return refused(`a redirect to ${hostname}, which did not resolve within ${NAME_LOOKUP_MS} ms`);
    return verdictFor(named, addresses);
  } catch {
    return refused(`a redirect to ${hostname}, which could not be resolved`);
  } finally {
    clearTimeout(timer);
    turn.leave();
    pending.catch(() => undefined);
  }
}

function verdictFor(named: NamedLocation, addresses: readonly string[]): string | WardenError {
  const here = addresses.some((a) => namesThisMachine(a.split('%', 1)[0] as string));
  return here ? refused(`a redirect to ${named.hostname}, a name of this machine`) : named.href;
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
