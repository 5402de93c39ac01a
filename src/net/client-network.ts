/**
 * The client a rate limit counts, from its address: an IPv4 address as it is (also written as
 * IPv4-mapped IPv6), an IPv6 address by its /64. One subscriber or host is given a /64 to number
 * itself in, so 2^64 addresses are one client's to rotate through: counted one by one, each would
 * start with a full bucket.
 */
import { isIPv6 } from 'node:net';

const MAPPED_IPV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

export function clientNetworkOf(address: string): string {
  if (!address.includes(':') || !isIPv6(address)) return address;
  const mapped = MAPPED_IPV4.exec(address);
  if (mapped) return mapped[1] as string;
  const [head = '', tail] = (address.split('%')[0] as string).split('::');
  const groups = head === '' ? [] : head.split(':');
  if (tail !== undefined) {
    const after = tail === '' ? [] : tail.split(':');
    // An embedded IPv4 address at the end stands for two groups; it never reaches the first four.
    const width = after.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
    groups.push(...Array<string>(Math.max(0, 8 - groups.length - width)).fill('0'), ...after);
  }
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
