import { describe, expect, it } from 'vitest';
import { isVaultError } from '../errors/vault-error.js';
import { admittedRoles, newTokenExpiry, roleAllows, roleCovers } from './admin-roles.js';

const now = new Date('2026-06-01T12:00:00.000Z');
const codeOf = (run: () => unknown): string | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    return isVaultError(error) ? error.code : 'not a VaultError';
  }
};

describe('admin roles', () => {
  it('admits admin everywhere, and every other role only where a route names it', () => {
    expect(roleAllows('admin', 'operator')).toBe(true);
    expect(roleAllows('operator', 'operator')).toBe(true);
    expect(roleAllows('auditor', ['operator', 'auditor'])).toBe(true);
    expect(roleAllows('approver', ['operator', 'auditor'])).toBe(false);
    expect(roleAllows('operator', 'admin')).toBe(false);
    expect(admittedRoles(['operator', 'auditor'])).toEqual(['admin', 'operator', 'auditor']);
    expect(admittedRoles('admin')).toEqual(['admin']);
  });

  it('nests no role but under admin', () => {
    expect(roleCovers('admin', 'auditor')).toBe(true);
    expect(roleCovers('operator', 'auditor')).toBe(false);
    expect(roleCovers('operator', 'approver')).toBe(false);
    expect(roleCovers('auditor', 'auditor')).toBe(true);
  });

  it('gives a new token the life asked for, never past its creator’s, and never a wider role', () => {
    const permanent = { role: 'admin' as const, expiresAt: null };
    expect(newTokenExpiry(permanent, { role: 'operator', ttlSeconds: undefined }, now)).toBeNull();
    expect(newTokenExpiry(permanent, { role: 'admin', ttlSeconds: 60 }, now)).toBe(
      '2026-06-01T12:01:00.000Z',
    );

    const hour = { role: 'admin' as const, expiresAt: '2026-06-01T13:00:00.000Z' };
    expect(newTokenExpiry(hour, { role: 'auditor', ttlSeconds: 3600 }, now)).toBe(hour.expiresAt);
    expect(codeOf(() => newTokenExpiry(hour, { role: 'auditor', ttlSeconds: 3601 }, now))).toBe(
      'admin_token_outlives_creator',
    );
    expect(codeOf(() => newTokenExpiry(hour, { role: 'auditor', ttlSeconds: undefined }, now))).toBe(
      'admin_token_outlives_creator',
    );
    expect(
      codeOf(() =>
        newTokenExpiry({ role: 'operator', expiresAt: null }, { role: 'admin', ttlSeconds: 60 }, now),
      ),
    ).toBe('forbidden_role');
  });
});
