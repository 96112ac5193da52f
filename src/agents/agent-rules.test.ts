import { describe, expect, it } from 'vitest';
import { defaultAudience } from '../config/config-schema.js';
import { assertAgentName, claimsMatch, validateBindingClaims } from './agent-rules.js';

describe('agent names', () => {
  it('follows the credential name rules and refuses id-shaped names', () => {
    expect(() => assertAgentName('agent-42')).not.toThrow();
    expect(() => assertAgentName('Agent 42')).toThrow(/not a valid agent name/);
    expect(() => assertAgentName('6f1c2a4e-1b2c-4d3e-8f90-0123456789ab')).toThrow(/shape of an agent id/);
  });
});

describe('workload binding claims', () => {
  it('sorts exact string values and refuses what cannot be bound', () => {
    expect(
      validateBindingClaims({ sub: 'repo:acme/app:ref:refs/heads/main', repository: 'acme/app' }),
    ).toEqual({
      repository: 'acme/app',
      sub: 'repo:acme/app:ref:refs/heads/main',
    });
    expect(() => validateBindingClaims({})).toThrow(/1 to 20 claims/);
    expect(() => validateBindingClaims({ iss: 'https://x' })).toThrow(/cannot match on "iss"/);
    expect(() => validateBindingClaims({ aud: 'x' })).toThrow(/cannot match on "aud"/);
    expect(() => validateBindingClaims({ sub: 42 })).toThrow(/non-empty string/);
    expect(() => validateBindingClaims({ 'bad name': 'x' })).toThrow(/not a valid claim name/);
    expect(() => validateBindingClaims(['sub'])).toThrow(/object/);
  });

  it('matches only when every bound claim has exactly the bound string value', () => {
    const bound = { repository: 'acme/app', ref: 'refs/heads/main' };
    expect(claimsMatch(bound, { repository: 'acme/app', ref: 'refs/heads/main', sub: 'x' })).toBe(true);
    expect(claimsMatch(bound, { repository: 'acme/app' })).toBe(false);
    expect(claimsMatch(bound, { repository: 'acme/app', ref: 'refs/heads/main-evil' })).toBe(false);
    expect(claimsMatch({ run: '1' }, { run: 1 })).toBe(false);
    expect(claimsMatch({ toString: 'x' }, {})).toBe(false);
  });
});

describe('the default audience', () => {
  it('is the URL the vault listens on', () => {
    expect(defaultAudience({ host: '127.0.0.1', port: 8200 })).toBe('http://127.0.0.1:8200');
    expect(defaultAudience({ host: '::1', port: 8200 })).toBe('http://[::1]:8200');
  });
});
