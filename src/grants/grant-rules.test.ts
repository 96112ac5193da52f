import { describe, expect, it } from 'vitest';
import type { VaultError } from '../errors/vault-error.js';
import {
  earliestExpiry,
  grantExpiresAt,
  grantLifetime,
  grantScopes,
  grantStatus,
  parseScopeQuery,
  scopesOutside,
} from './grant-rules.js';
import { hoursFromNow, testGrant, testNow } from '../../test/helpers/grants.js';

const now = testNow;
const grant = testGrant;

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return { code: (error as VaultError).code, message: (error as VaultError).message };
  }
  throw new Error('expected a VaultError');
};

describe('scopes', () => {
  it('names the requested scopes outside the allowed ones, once each', () => {
    expect(scopesOutside(['a', 'b', 'b', 'c'], ['a'])).toEqual(['b', 'c']);
    expect(scopesOutside([], ['a'])).toEqual([]);
  });

  it('gives a new grant all the credential’s scopes when none are asked for', () => {
    expect(grantScopes(undefined, { name: 'slack', scopes: ['read', 'write'] })).toEqual(['read', 'write']);
  });

  it('accepts a subset and refuses a scope the credential lacks, naming it and the allowed ones', () => {
    expect(grantScopes(['read'], { name: 'slack', scopes: ['read', 'write'] })).toEqual(['read']);
    const refused = codeOf(() =>
      grantScopes(['read', 'admin'], { name: 'slack', scopes: ['read', 'write'] }),
    );
    expect(refused.code).toBe('invalid_scope');
    expect(refused.message).toContain('"admin"');
    expect(refused.message).not.toContain('"read"');
    expect(refused.message).toContain('read, write');
  });

  it('parses ?scope= as a comma list, repeated values or OAuth’s space list', () => {
    expect(parseScopeQuery(undefined)).toEqual([]);
    expect(parseScopeQuery('a,b')).toEqual(['a', 'b']);
    expect(parseScopeQuery(['a', 'b,c', 'a'])).toEqual(['a', 'b', 'c']);
    expect(parseScopeQuery('a b')).toEqual(['a', 'b']);
    expect(parseScopeQuery(',,')).toEqual([]);
    expect(codeOf(() => parseScopeQuery(Array.from({ length: 101 }, (_, i) => `s${i}`))).code).toBe(
      'invalid_request',
    );
  });
});

describe('lifetime', () => {
  it('takes 1h to 30d, as a duration or seconds', () => {
    expect(grantLifetime({ ttl: '1h' })).toBe(3600);
    expect(grantLifetime({ ttl: '30d' })).toBe(2_592_000);
    expect(grantLifetime({ ttl: 7200 })).toBe(7200);
    expect(grantLifetime({ untilRevoked: true })).toBeNull();
  });

  it.each([
    ['59m', /too short/],
    ['3599s', /too short/],
    ['31d', /too long/],
    ['30d1s', /too long/],
    ['soon', /not a duration/],
  ])('refuses %s with the allowed range', (ttl, why) => {
    const refused = codeOf(() => grantLifetime({ ttl }));
    expect(refused.code).toBe('invalid_ttl');
    expect(refused.message).toMatch(why);
    expect(refused.message).toContain('from 1h to 30d');
  });

  it('needs exactly one of a TTL and until revoked', () => {
    expect(codeOf(() => grantLifetime({})).message).toMatch(/Say how long the grant lasts/);
    expect(codeOf(() => grantLifetime({ ttl: '1h', untilRevoked: true })).message).toMatch(/not both/);
  });

  it('computes the expiry from the injected time', () => {
    expect(grantExpiresAt(now, 3600)).toBe('2026-06-01T13:00:00.000Z');
    expect(grantExpiresAt(now, null)).toBeNull();
  });
});

describe('status', () => {
  it('is revoked, expired (at the exact expiry instant) or active', () => {
    expect(grantStatus(grant(), now)).toBe('active');
    expect(grantStatus(grant({ expiresAt: now.toISOString() }), now)).toBe('expired');
    expect(grantStatus(grant({ expiresAt: null }), now)).toBe('active');
    expect(grantStatus(grant({ revokedAt: hoursFromNow(-1) }), now)).toBe('revoked');
  });

  it('takes the earliest expiry, null meaning never', () => {
    expect(earliestExpiry(null, null)).toBeNull();
    expect(earliestExpiry(hoursFromNow(2), null, hoursFromNow(1))).toBe(hoursFromNow(1));
  });
});
