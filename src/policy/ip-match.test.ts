import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addressMatcher, normaliseAddress, parseCidr } from './ip-match.js';
import type { Cidr } from './policy-types.js';

const matcher = (...cidrs: string[]) => addressMatcher(cidrs.map((text) => parseCidr(text) as Cidr));

describe('CIDR matching', () => {
  it('IPv4 edges: first and last address in, the neighbours out', () => {
    const office = matcher('203.0.113.0/24');
    expect(office.matches('203.0.113.0')).toBe(true);
    expect(office.matches('203.0.113.255')).toBe(true);
    expect(office.matches('203.0.112.255')).toBe(false);
    expect(office.matches('203.0.114.0')).toBe(false);
  });

  it('IPv6 edges', () => {
    const range = matcher('2001:db8::/32');
    expect(range.matches('2001:db8::')).toBe(true);
    expect(range.matches('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(true);
    expect(range.matches('2001:db7:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(false);
    expect(range.matches('2001:db9::')).toBe(false);
    expect(range.matches('2001:DB8::1')).toBe(true);
  });

  it('IPv4-mapped IPv6 matches IPv4 ranges, in dotted and in hex form', () => {
    const office = matcher('203.0.113.0/24');
    expect(office.matches('::ffff:203.0.113.5')).toBe(true);
    expect(office.matches('::ffff:cb00:7105')).toBe(true);
    expect(office.matches('0:0:0:0:0:ffff:203.0.113.5')).toBe(true);
    expect(office.matches('::ffff:203.0.114.5')).toBe(false);
    expect(normaliseAddress('::FFFF:203.0.113.5')).toEqual({ family: 'ipv4', address: '203.0.113.5' });
  });

  it('a bare address is a single host; a zone id is ignored; garbage matches nothing', () => {
    expect(parseCidr('198.51.100.7')).toEqual({ family: 'ipv4', address: '198.51.100.7', prefix: 32 });
    expect(matcher('fe80::1').matches('fe80::1%eth0')).toBe(true);
    expect(matcher('0.0.0.0/0').matches('not-an-address')).toBe(false);
    expect(matcher('0.0.0.0/0').matches('')).toBe(false);
  });

  it('refuses prefixes out of range and malformed text', () => {
    for (const bad of [
      '203.0.113.0/33',
      '2001:db8::/129',
      '203.0.113/24',
      '203.0.113.0/',
      '1.2.3.4/8/8',
      'x/1',
      '1.2.3.4/-1',
    ]) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
  });
});

const ipv4Text = (value: number) =>
  [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
const ipv6Text = (value: bigint) =>
  Array.from({ length: 8 }, (_, index) => ((value >> BigInt(112 - index * 16)) & 0xffffn).toString(16)).join(
    ':',
  );

describe('CIDR matching, property-based', () => {
  it('IPv4: a random address inside a random prefix matches; the first one after the prefix does not', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        (base, prefix, offset) => {
          const size = 2 ** (32 - prefix);
          const network = Math.floor(base / size) * size;
          const inside = network + (offset % size);
          const range = matcher(`${ipv4Text(network)}/${prefix}`);
          expect(range.matches(ipv4Text(inside))).toBe(true);
          expect(range.matches(`::ffff:${ipv4Text(inside)}`)).toBe(true);
          const after = network + size;
          if (after <= 2 ** 32 - 1) expect(range.matches(ipv4Text(after))).toBe(false);
          if (network > 0) expect(range.matches(ipv4Text(network - 1))).toBe(false);
        },
      ),
    );
  });

  it('IPv4 containment: any address matches exactly when its first prefix bits are the network’s, in every form', () => {
    const mappedHex = (value: number) =>
      `::ffff:${(value >>> 16).toString(16)}:${(value & 0xffff).toString(16)}`;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        (base, prefix, address) => {
          const size = 2 ** (32 - prefix);
          const network = Math.floor(base / size) * size;
          const inside = Math.floor(address / size) * size === network;
          const range = matcher(`${ipv4Text(network)}/${prefix}`);
          // Plain, IPv4-mapped dotted, IPv4-mapped hex, and fully written out: one answer.
          expect(range.matches(ipv4Text(address))).toBe(inside);
          expect(range.matches(`::ffff:${ipv4Text(address)}`)).toBe(inside);
          expect(range.matches(mappedHex(address))).toBe(inside);
          expect(range.matches(`0:0:0:0:0:ffff:${ipv4Text(address)}`)).toBe(inside);
        },
      ),
    );
  });

  it('IPv6 containment: any address matches exactly when its first prefix bits are the network’s', () => {
    const max = (1n << 128n) - 1n;
    const outsideMapped = fc.bigInt({ min: 0n, max }).filter((value) => value >> 32n !== 0xffffn);
    fc.assert(
      fc.property(outsideMapped, fc.integer({ min: 1, max: 128 }), outsideMapped, (base, prefix, address) => {
        const size = 1n << BigInt(128 - prefix);
        const network = (base / size) * size;
        fc.pre(network >> 32n !== 0xffffn);
        const range = matcher(`${ipv6Text(network)}/${prefix}`);
        expect(range.matches(ipv6Text(address))).toBe((address / size) * size === network);
      }),
    );
  });

  it('IPv6: the same for 128-bit addresses', () => {
    const max = (1n << 128n) - 1n;
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max }),
        fc.integer({ min: 1, max: 128 }),
        fc.bigInt({ min: 0n, max }),
        (base, prefix, offset) => {
          const size = 1n << BigInt(128 - prefix);
          const network = (base / size) * size;
          // Skip the IPv4-mapped block, whose addresses are read as IPv4 on purpose.
          fc.pre(network >> 32n !== 0xffffn);
          const range = matcher(`${ipv6Text(network)}/${prefix}`);
          expect(range.matches(ipv6Text(network + (offset % size)))).toBe(true);
          if (network + size <= max && (network + size) >> 32n !== 0xffffn) {
            expect(range.matches(ipv6Text(network + size))).toBe(false);
          }
        },
      ),
    );
  });
});
