/**
 * Loopback addresses and Hosts: what the admin and egress listeners (plain HTTP, bound to loopback)
 * answer. A web page in a browser on the same machine can reach them; with DNS rebinding its own
 * name resolves to 127.0.0.1 and its requests are same-origin, but they still carry that name in Host.
 */
import { isIP } from 'node:net';
import { createIpSet } from './ip-set.js';

/** Loopback addresses (IPv4-mapped ones included: the IpSet's BlockList matches them itself). */
const LOOPBACK = createIpSet(['127.0.0.0/8', '::1']);

export const isLoopbackAddress = (address: string): boolean => LOOPBACK.has(address);

/** A loopback IP literal or `localhost`: a bind address that keeps a listener on this machine. */
export function isLoopbackBindHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIP(bare) !== 0 ? isLoopbackAddress(bare) : bare.toLowerCase() === 'localhost';
}

/** The name of a Host field value without its port (and without brackets for IPv6), lower case; undefined if it is not one. */
export function hostName(host: string): string | undefined {
  const bracketed = /^\[([^\]]+)\](?::\d*)?$/.exec(host);
  if (bracketed) return (bracketed[1] as string).toLowerCase();
  return /^([^:]*)(?::\d*)?$/.exec(host)?.[1]?.toLowerCase().replace(/\.$/, '');
}

/**
 * A Host (with any port) that names this machine whatever DNS says: a loopback literal,
 * `localhost` or a name under `.localhost` (RFC 6761: resolved to loopback, never delegated).
 * A rebinding page can only send its own name. No Host at all (HTTP/1.0) is no browser's request.
 */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return true;
  const bracketed = /^\[([^\]]+)\](?::\d*)?$/.exec(host);
  if (bracketed) return isIP(bracketed[1] as string) === 6 && isLoopbackAddress(bracketed[1] as string);
  const name = hostName(host);
  if (name === undefined) return false;
  if (isIP(name) === 4) return isLoopbackAddress(name);
  return name === 'localhost' || name.endsWith('.localhost');
}
