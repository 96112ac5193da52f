import { describe, expect, it } from 'vitest';
import { embeddedIpv4, nonPublicRange } from './ip-ranges.js';

describe('non-public address ranges', () => {
  it('names private, loopback, link-local, CGNAT, unique-local and metadata addresses', () => {
    expect(nonPublicRange('127.0.0.1')).toBe('loopback');
    expect(nonPublicRange('10.1.2.3')).toBe('private');
    expect(nonPublicRange('172.31.255.255')).toBe('private');
    expect(nonPublicRange('192.168.1.1')).toBe('private');
    expect(nonPublicRange('169.254.169.254')).toBe('link-local (cloud metadata)');
    expect(nonPublicRange('100.100.100.200')).toBe('shared address space (CGNAT)');
    expect(nonPublicRange('0.0.0.0')).toBe('unspecified');
    expect(nonPublicRange('::1')).toBe('loopback');
    expect(nonPublicRange('::')).toBe('unspecified');
    expect(nonPublicRange('fd00:ec2::254')).toBe('unique-local');
    expect(nonPublicRange('fe80::1')).toBe('link-local');
    expect(nonPublicRange('::ffff:127.0.0.1')).toBe('IPv4-mapped');
    expect(nonPublicRange('::ffff:7f00:1')).toBe('IPv4-mapped');
  });

  it('looks inside NAT64 and 6to4 addresses for a private IPv4 one', () => {
    expect(embeddedIpv4('64:ff9b::a9fe:a9fe')).toBe('169.254.169.254');
    expect(nonPublicRange('64:ff9b::169.254.169.254')).toBe(
      'link-local (cloud metadata), inside an IPv6 address',
    );
    expect(nonPublicRange('2002:0a00:0001::1')).toBe('private, inside an IPv6 address');
    expect(nonPublicRange('64:ff9b::8.8.8.8')).toBeUndefined();
  });

  it('lets public addresses through', () => {
    for (const address of [
      '8.8.8.8',
      '1.1.1.1',
      '140.82.112.3',
      '2606:4700:4700::1111',
      '2a00:1450:4001::200e',
    ])
      expect(nonPublicRange(address), address).toBeUndefined();
    expect(nonPublicRange('example.com')).toBe('not an IP address');
  });
});
