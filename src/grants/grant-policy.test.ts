import { describe, expect, it } from 'vitest';
import type { VaultError } from '../errors/vault-error.js';
import {
  type CredentialState,
  decideRetrieval,
  earliestExpiry,
  grantExpiresAt,
  grantLifetime,
  grantScopes,
  grantStatus,
  parseScopeQuery,
  scopesOutside,
} from './grant-policy.js';
import type { Grant } from './grant-types.js';

const now = new Date('2026-06-01T12:00:00.000Z');
const hoursFromNow = (h: number) => new Date(now.getTime() + h * 3_600_000).toISOString();

const grant = (over: Partial<Grant> = {}): Grant => ({
  id: 'g1',
  namespace: 'default',
  agentId: 'a1',
  credentialId: 'c1',
  scopes: ['read', 'write'],
  reveal: true,
  expiresAt: hoursFromNow(1),
  createdAt: '2026-06-01T11:00:00.000Z',
  createdBy: 'admin:t1',
  revokedAt: null,
  revokedReason: null,
  ...over,
});

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

describe('decideRetrieval', () => {
  const active: CredentialState = { status: 'active', expiresAt: null };
  const decide = (grants: Grant[], requestedScopes: string[] = [], credential = active) =>
    decideRetrieval({ grants, credential, requestedScopes, now });

  it('answers the same for no grant and no credential, so existence does not leak', () => {
    expect(decide([])).toEqual({ allowed: false, code: 'credential_not_granted' });
    expect(decideRetrieval({ grants: [], credential: undefined, requestedScopes: [], now })).toEqual({
      allowed: false,
      code: 'credential_not_granted',
    });
  });

  it('allows a live reveal grant with its scopes, narrowed to those asked for', () => {
    expect(decide([grant()])).toMatchObject({ allowed: true, scopes: ['read', 'write'] });
    expect(decide([grant()], ['read'])).toMatchObject({ allowed: true, scopes: ['read'] });
  });

  it('refuses a scope the grant does not give', () => {
    const refused = decide([grant({ scopes: ['read'] })], ['read', 'write']);
    expect(refused).toMatchObject({ allowed: false, code: 'scope_not_granted' });
    expect(!refused.allowed && refused.message).toContain('"write"');
  });

  it('says expired or revoked by the newest grant', () => {
    expect(decide([grant({ expiresAt: hoursFromNow(-1) })])).toMatchObject({ code: 'grant_expired' });
    expect(decide([grant({ revokedAt: hoursFromNow(-1) })])).toMatchObject({ code: 'grant_revoked' });
    const older = grant({ id: 'old', revokedAt: hoursFromNow(-2), createdAt: '2026-05-01T00:00:00.000Z' });
    const newer = grant({ id: 'new', expiresAt: hoursFromNow(-1) });
    expect(decide([older, newer])).toMatchObject({ code: 'grant_expired', grant: { id: 'new' } });
  });

  it('checks the grant before the credential, and the credential before reveal', () => {
    expect(
      decide([grant({ revokedAt: hoursFromNow(-1) })], [], { status: 'needs_reauth', expiresAt: null }),
    ).toMatchObject({
      code: 'grant_revoked',
    });
    expect(decide([grant({ reveal: false })], [], { status: 'needs_reauth', expiresAt: null })).toMatchObject(
      {
        code: 'credential_needs_reauth',
      },
    );
    expect(decide([grant()], [], { status: 'revoked', expiresAt: null })).toMatchObject({
      code: 'credential_revoked',
    });
    expect(decide([grant()], [], { status: 'active', expiresAt: hoursFromNow(-1) })).toMatchObject({
      code: 'credential_expired',
    });
    expect(decide([grant({ reveal: false })])).toMatchObject({ code: 'reveal_not_granted' });
  });

  it('expires at the earlier of the grant and the credential', () => {
    expect(
      decide([grant({ expiresAt: hoursFromNow(5) })], [], { status: 'active', expiresAt: hoursFromNow(2) }),
    ).toMatchObject({
      expiresAt: hoursFromNow(2),
    });
    expect(decide([grant({ expiresAt: null })])).toMatchObject({ expiresAt: null });
  });

  it('prefers a reveal grant that covers the scopes when several are live', () => {
    const proxyOnly = grant({ id: 'p', reveal: false, scopes: ['read', 'write'] });
    const narrow = grant({ id: 'r', reveal: true, scopes: ['read'] });
    expect(decide([proxyOnly, narrow], ['read'])).toMatchObject({ allowed: true, grant: { id: 'r' } });
    expect(decide([proxyOnly, narrow], ['write'])).toMatchObject({ code: 'reveal_not_granted' });
  });
});
