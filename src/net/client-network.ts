/**
 * The client a rate limit counts, from its address: an IPv4 address as it is (also when embedded in
 * IPv6, in any spelling: see EMBEDS_IPV4, and a Teredo client's or a 6to4 site's), an IPv6 address by its /64. One subscriber or host is
 * given a /64 to number itself in, so 2^64 addresses are one client's to rotate through: counted one
 * by one, each would start with a full bucket. An address taken from a trusted proxy's
 * X-Forwarded-For may carry a port (`1.2.3.4:5678`, `[2001:db8::1]:443`): the port is not the
 * client, or each source port would be a bucket of its own.
 */
import { isIP } from 'node:net';

const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const BRACKETED = /^\[([^\]]+)\](?::\d{1,5})?$/;

/**
 * The first six groups of the /96 prefixes whose last 32 bits are an IPv4 client. Behind a NAT64 or
 * SIIT translator every IPv4 client has its own address in one /64: counted by the /64, one abusive
 * IPv4 client would exhaust the bucket of all of them. 64:ff9b:1::/48 (RFC 8215) is not here: where
 * its IPv4 address sits depends on the prefix length the operator chose (RFC 6052 §2.2).
 */
const EMBEDS_IPV4: readonly (readonly number[])[] = [
  [0, 0, 0, 0, 0, 0xffff], // ::ffff:0:0/96 IPv4-mapped (RFC 4291)
  [0x64, 0xff9b, 0, 0, 0, 0], // 64:ff9b::/96 NAT64 well-known prefix (RFC 6052)
  [0, 0, 0, 0, 0xffff, 0], // ::ffff:0:0:0/96 IPv4-translated, SIIT (RFC 2765)
  [0, 0, 0, 0, 0, 0], // ::/96 IPv4-compatible (deprecated, RFC 4291), except :: and ::1
];

/**
 * Teredo (2001:0::/32, RFC 4380): the server's IPv4 address, flags and the client's port, then the
 * client's public IPv4 address with every bit inverted. Every client of one Teredo server shares a
 * /64 (2001:0:<server>), so counted by it, one abusive client would exhaust the bucket of all.
 */
const isTeredo = (groups: readonly number[]) => groups[0] === 0x2001 && groups[1] === 0;

/**
 * 6to4 (2002::/16, RFC 3056): a site's /48 is 2002:<its public IPv4 address>, and its 65 536 /64s
 * are all that one IPv4 host's to send from: counted by the /64, it would have as many buckets
 * (red team 28). Counted as the IPv4 address, as Teredo's clients are.
 */
const isSixToFour = (groups: readonly number[]) => groups[0] === 0x2002;

export function clientNetworkOf(address: string): string {
  // Most addresses: IPv4 from the socket, as it is (on the request path of every rate-limited route).
  if (!address.includes(':')) return address;
  const host = withoutPort(address);
  if (isIP(host) !== 6) return host;
  const groups = ipv6Groups(host.split('%')[0] as string);
  // An embedded IPv4 address is the same client as its dotted form, whichever way it is written;
  // :: and ::1 lie in ::/96 too, but are not IPv4 clients.
  const unspecifiedOrLoopback = groups.slice(0, 7).every((g) => g === 0) && (groups[7] ?? 0) <= 1;
  if (!unspecifiedOrLoopback && EMBEDS_IPV4.some((prefix) => prefix.every((g, i) => g === groups[i]))) {
    return dottedOf(groups[6] ?? 0, groups[7] ?? 0);
  }
  if (isTeredo(groups)) return dottedOf((groups[6] ?? 0) ^ 0xffff, (groups[7] ?? 0) ^ 0xffff);
  if (isSixToFour(groups)) return dottedOf(groups[1] ?? 0, groups[2] ?? 0);
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

const dottedOf = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;

/** The address of an X-Forwarded-For hop, without the port or brackets a proxy may write around it. */
export function withoutPort(address: string): string {
  const bracketed = BRACKETED.exec(address);
  if (bracketed) return bracketed[1] as string;
  const v4 = IPV4_WITH_PORT.exec(address);
  return v4 ? (v4[1] as string) : address;
}

/** The eight 16-bit groups of a valid IPv6 address (an embedded dotted IPv4 tail is two). */
function ipv6Groups(address: string): number[] {
  const parse = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((g) => {
          if (!g.includes('.')) return [parseInt(g, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = g.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const [head = '', tail] = address.split('::');
  const before = parse(head);
  if (tail === undefined) return before;
  const after = parse(tail);
  return [...before, ...Array<number>(8 - before.length - after.length).fill(0), ...after];
}
