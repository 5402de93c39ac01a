/** A set of IP ranges (CIDRs or single addresses) answering "is this client address in it?". */
import { BlockList, isIP } from 'node:net';

export interface IpSet {
  readonly size: number;
  has(address: string): boolean;
}

/** Parses "10.0.0.0/8", "::1/128" or a bare address; returns undefined when it is not one. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', prefixText, extra] = text.trim().split('/');
  if (extra !== undefined) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

const MEMO_LIMIT = 4096;

export function createIpSet(cidrs: readonly string[]): IpSet {
  const list = new BlockList();
  for (const text of cidrs) {
    const cidr = parseCidr(text);
    if (!cidr) throw new TypeError(`not an IP address or CIDR: ${text}`);
    list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  const size = cidrs.length;
  // BlockList.check allocates a SocketAddress per call; callers are few and repeat (kept-alive
  // connections), so answers are memoised in a bounded map.
  const memo = new Map<string, boolean>();
  return {
    size,
    has(address) {
      if (size === 0 || !address) return false;
      let hit = memo.get(address);
      if (hit === undefined) {
        // BlockList matches IPv4-mapped IPv6 ("::ffff:10.0.0.1") against IPv4 rules by itself.
        hit = isIP(address) !== 0 && list.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
        if (memo.size >= MEMO_LIMIT) memo.clear();
        memo.set(address, hit);
      }
      return hit;
    },
  };
}
