/**
 * Loopback addresses and Hosts: what the admin and egress listeners (plain HTTP, bound to loopback)
 * answer. A web page in a browser on the same machine can reach them; with DNS rebinding its own
 * name resolves to 127.0.0.1 and its requests are same-origin, but they still carry that name in Host.
 */
import type { IncomingHttpHeaders } from 'node:http';
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
  const name = hostName(host);
  if (name === undefined) return false;
  if (isIP(name) !== 0) return isLoopbackAddress(name);
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * Header fields only browsers send (the request's origin, fetch metadata); curl, scripts and
 * backends' HTTP clients send none. Not Sec-Fetch-Mode: Node's own fetch (undici) sends
 * `sec-fetch-mode: cors` on every request, and every Node backend calling egress with it was
 * refused as a browser; browsers send it only beside Sec-Fetch-Site and Sec-Fetch-Dest.
 */
const BROWSER_FIELDS = ['origin', 'sec-fetch-site', 'sec-fetch-dest', 'sec-fetch-user'] as const;

/**
 * The browser-only fields a request carries (none: not a web page's request). A form or
 * `text/plain` POST needs no CORS preflight, so any page open on the machine can send one to a
 * loopback listener; it always carries Origin or Sec-Fetch-* (a blind GET from an old browser may not).
 */
export function browserFieldsOf(headers: IncomingHttpHeaders): string[] {
  return BROWSER_FIELDS.filter((name) => headers[name] !== undefined);
}

/**
 * A browser's request that says it comes from another site or origin: Sec-Fetch-Site `cross-site`
 * or `same-site`, or an Origin other than the Host it is sent to. A page's own requests say
 * `same-origin`, an address typed in the address bar `none`.
 */
export function isCrossOriginRequest(headers: IncomingHttpHeaders): boolean {
  const site = headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  if (headers.origin === undefined) return false;
  const originHost = URL.canParse(headers.origin) ? new URL(headers.origin).host : undefined;
  return originHost !== headers.host?.toLowerCase();
}
