import { describe, expect, it } from 'vitest';
import { clientAddress, parseTrustedProxies } from './client-address.js';

const { matcher: trusted } = parseTrustedProxies(['10.0.0.0/8', '2001:db8:1::/48']);

describe('client address', () => {
  it('is the socket peer when there is no trusted proxy in front', () => {
    expect(
      clientAddress({ socketAddress: '198.51.100.7', forwardedFor: undefined, trustedProxies: trusted }),
    ).toBe('198.51.100.7');
  });

  it('ignores X-Forwarded-For from an untrusted peer (a spoof)', () => {
    expect(
      clientAddress({ socketAddress: '198.51.100.7', forwardedFor: '203.0.113.5', trustedProxies: trusted }),
    ).toBe('198.51.100.7');
  });

  it('reads X-Forwarded-For from the right through a trusted proxy', () => {
    expect(
      clientAddress({ socketAddress: '10.0.0.2', forwardedFor: '198.51.100.7', trustedProxies: trusted }),
    ).toBe('198.51.100.7');
  });

  it('skips trusted hops, and ignores what the client wrote left of the first untrusted one', () => {
    expect(
      clientAddress({
        socketAddress: '10.0.0.2',
        forwardedFor: ['203.0.113.5, 198.51.100.7', '10.1.1.1'],
        trustedProxies: trusted,
      }),
    ).toBe('198.51.100.7');
  });

  it('takes the leftmost hop when every hop is trusted, and stops at a hop that is no address', () => {
    expect(
      clientAddress({
        socketAddress: '10.0.0.2',
        forwardedFor: '10.9.9.9, 10.1.1.1',
        trustedProxies: trusted,
      }),
    ).toBe('10.9.9.9');
    expect(
      clientAddress({ socketAddress: '10.0.0.2', forwardedFor: 'evil, 10.1.1.1', trustedProxies: trusted }),
    ).toBe('10.1.1.1');
  });

  it('normalises IPv4-mapped peers and hops, and handles IPv6 proxies', () => {
    expect(
      clientAddress({
        socketAddress: '::ffff:10.0.0.2',
        forwardedFor: '::ffff:198.51.100.7',
        trustedProxies: trusted,
      }),
    ).toBe('198.51.100.7');
    expect(
      clientAddress({
        socketAddress: '2001:db8:1::9',
        forwardedFor: '2001:db8:2::1',
        trustedProxies: trusted,
      }),
    ).toBe('2001:db8:2::1');
  });

  it('with no trusted proxies configured, never reads the header', () => {
    const none = parseTrustedProxies([]).matcher;
    expect(
      clientAddress({ socketAddress: '10.0.0.2', forwardedFor: '198.51.100.7', trustedProxies: none }),
    ).toBe('10.0.0.2');
  });

  it('reports the trusted-proxy entries that are not CIDRs', () => {
    expect(parseTrustedProxies(['10.0.0.0/8', 'localhost', '10.0.0.0/40']).invalid).toEqual([
      'localhost',
      '10.0.0.0/40',
    ]);
  });
});
