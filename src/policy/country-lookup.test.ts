import { describe, expect, it } from 'vitest';
import { createCountryLookup } from './country-lookup.js';

describe('country lookup over the bundled public-domain MMDB', () => {
  const lookup = createCountryLookup();

  it('finds the country of public IPv4 and IPv6 addresses, and of IPv4-mapped ones', () => {
    for (const address of ['8.8.8.8', '::ffff:8.8.8.8', '2001:4860:4860::8888']) {
      expect(lookup.countryOf(address), address).toBe('US');
    }
    expect(lookup.countryOf('193.99.144.80')).toBe('DE');
  });

  it('gives no country to loopback, private, link-local and malformed addresses', () => {
    for (const address of [
      '127.0.0.1',
      '::1',
      '10.1.2.3',
      '192.168.1.1',
      '172.16.5.4',
      '169.254.1.1',
      'fd00::1',
      'fe80::1',
      'nope',
    ]) {
      expect(lookup.countryOf(address), address).toBeUndefined();
    }
  });
});
