import { BlockList, isIP } from 'node:net';

/**
 * Which addresses the vault refuses to reach on someone else's say-so (outbound-guard.ts), as named
 * ranges so a refusal can say why. Everything that is not the public internet: a URL chosen by an
 * issuer, an OAuth provider or a webhook owner must not reach the vault's own host, its network, or a
 * cloud metadata service (169.254.169.254, fd00:ec2::254, 100.100.100.200 all fall in ranges below).
 */
const ranges: [name: string, type: 'ipv4' | 'ipv6', cidrs: string[]][] = [
  ['unspecified', 'ipv4', ['0.0.0.0/8']],
  ['private', 'ipv4', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']],
  ['shared address space (CGNAT)', 'ipv4', ['100.64.0.0/10']],
  ['loopback', 'ipv4', ['127.0.0.0/8']],
  ['link-local (cloud metadata)', 'ipv4', ['169.254.0.0/16']],
  ['IETF protocol assignments', 'ipv4', ['192.0.0.0/24']],
  ['documentation', 'ipv4', ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24']],
  ['benchmarking', 'ipv4', ['198.18.0.0/15']],
  ['multicast', 'ipv4', ['224.0.0.0/4']],
  ['reserved', 'ipv4', ['240.0.0.0/4']],
  ['unspecified', 'ipv6', ['::/128']],
  ['loopback', 'ipv6', ['::1/128']],
  ['IPv4-compatible', 'ipv6', ['::/96']],
  ['IPv4-mapped', 'ipv6', ['::ffff:0:0/96']],
  ['discard-only', 'ipv6', ['100::/64']],
  ['documentation', 'ipv6', ['2001:db8::/32']],
  ['unique-local', 'ipv6', ['fc00::/7']],
  ['link-local', 'ipv6', ['fe80::/10']],
  ['site-local', 'ipv6', ['fec0::/10']],
  ['multicast', 'ipv6', ['ff00::/8']],
];

const named = ranges.map(([name, type, cidrs]) => {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [network, prefix] = cidr.split('/') as [string, string];
    list.addSubnet(network, Number(prefix), type);
  }
  return { name, type, list };
});

/** The 16-bit groups of an IPv6 address (with or without a dotted IPv4 tail), or undefined. */
const ipv6Groups = (address: string): number[] | undefined => {
  let text = address.toLowerCase().split('%')[0] ?? '';
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const octets = tail[1]!.split('.').map(Number);
    text = `${text.slice(0, -tail[1]!.length)}${((octets[0]! << 8) | octets[1]!).toString(16)}:${((octets[2]! << 8) | octets[3]!).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const part = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const before = part(head);
  const after = part(rest);
  const groups =
    rest === undefined
      ? before
      : [...before, ...Array<number>(8 - before.length - after.length).fill(0), ...after];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff)
    ? groups
    : undefined;
};

const dotted = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;

/**
 * The IPv4 address an IPv6 address carries, for the forms a translator or tunnel turns into an IPv4
 * connection: IPv4-mapped and -compatible (`::ffff:a.b.c.d`, `::a.b.c.d`), NAT64 (`64:ff9b::/96`) and
 * 6to4 (`2002::/16`). A public-looking IPv6 address must not smuggle a private IPv4 one.
 */
export const embeddedIpv4 = (address: string): string | undefined => {
  const g = ipv6Groups(address);
  if (!g) return undefined;
  const zeros = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeros(5) && (g[5] === 0xffff || g[5] === 0)) return dotted(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return dotted(g[6]!, g[7]!);
  if (g[0] === 0x2002) return dotted(g[1]!, g[2]!);
  return undefined;
};

/** Why an address is not on the public internet (its range's name), or undefined if it is. */
export const nonPublicRange = (address: string): string | undefined => {
  const family = isIP(address);
  if (family === 0) return 'not an IP address';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  // Only the ranges of the address's own family: a BlockList also matches an IPv4 rule against the
  // IPv4-mapped IPv6 form, and the reverse, which would make every IPv4 address `IPv4-mapped`.
  const found = named.find((range) => range.type === type && range.list.check(address, type))?.name;
  if (found) return found;
  const inner = type === 'ipv6' ? embeddedIpv4(address) : undefined;
  const innerRange = inner === undefined ? undefined : nonPublicRange(inner);
  return innerRange === undefined ? undefined : `${innerRange}, inside an IPv6 address`;
};
