import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Cidr } from './policy-types.js';

/** `a.b.c.d/n`, `x::y/n`, or a bare address (a /32 or /128). Undefined when it is neither. */
export const parseCidr = (text: string): Cidr | undefined => {
  const [address = '', prefixText, ...rest] = text.trim().split('/');
  if (rest.length > 0) return undefined;
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (family === undefined) return undefined;
  const max = family === 'ipv4' ? 32 : 128;
  if (prefixText === undefined) return { family, address: address.toLowerCase(), prefix: max };
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  return { family, address: address.toLowerCase(), prefix };
};

export const formatCidr = (cidr: Cidr): string => `${cidr.address}/${cidr.prefix}`;

/**
 * Strips an IPv6 zone (`fe80::1%eth0`) and the IPv4-mapped form (`::ffff:203.0.113.5`, as a
 * dual-stack socket reports an IPv4 peer), so an IPv4 client matches IPv4 ranges whichever way the
 * socket spelled it. Undefined when the text is no address.
 */
export const normaliseAddress = (text: string): { family: 'ipv4' | 'ipv6'; address: string } | undefined => {
  const address = text.trim().replace(/%.*$/, '').toLowerCase();
  if (isIPv4(address)) return { family: 'ipv4', address };
  if (!isIPv6(address)) return undefined;
  const dotted = /^(?:::|(?:0{1,4}:){5})ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address)?.[1];
  if (dotted !== undefined) return { family: 'ipv4', address: dotted };
  const hex = /^(?:::|(?:0{1,4}:){5})ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(address);
  if (hex !== null) {
    const high = parseInt(hex[1] as string, 16);
    const low = parseInt(hex[2] as string, 16);
    return { family: 'ipv4', address: [high >> 8, high & 255, low >> 8, low & 255].join('.') };
  }
  return { family: 'ipv6', address };
};

export interface AddressMatcher {
  matches(address: string): boolean;
}

/** A set of CIDRs, matched with Node's `BlockList`; an address that does not parse matches nothing. */
export const addressMatcher = (cidrs: readonly Cidr[]): AddressMatcher => {
  const list = new BlockList();
  for (const cidr of cidrs) list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  // The last answer: an agent's requests mostly come from one address, and parsing it and asking the
  // block list cost more than the rest of a policy's checks together.
  let last: { text: string; matches: boolean } | undefined;
  return {
    matches(text) {
      if (last?.text === text) return last.matches;
      const address = normaliseAddress(text);
      const matches = address !== undefined && list.check(address.address, address.family);
      last = { text, matches };
      return matches;
    },
  };
};

/**
 * Addresses with no country: loopback, private, link-local, CGNAT, unique-local and unspecified
 * ranges (the documentation ranges are left out: examples use them as public addresses). The geo rule treats them as unknown without asking a database.
 */
export const nonPublicRanges = addressMatcher(
  [
    '0.0.0.0/8',
    '10.0.0.0/8',
    '100.64.0.0/10',
    '127.0.0.0/8',
    '169.254.0.0/16',
    '172.16.0.0/12',
    '192.168.0.0/16',
    '::/128',
    '::1/128',
    'fc00::/7',
    'fe80::/10',
  ].map((text) => parseCidr(text) as Cidr),
);
