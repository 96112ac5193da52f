import { describe, expect, it } from 'vitest';
import { isVaultError } from '../errors/vault-error.js';
import { isStoreBusy, translateStoreError } from './store-errors.js';

const withCode = (code: string | undefined, message = 'database error') =>
  Object.assign(new Error(message), { code });

describe('store error translation', () => {
  it('calls a bounded wait that ran out busy, on both dialects', () => {
    for (const code of ['55P03', '57014', '25P03', 'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT']) {
      expect(isStoreBusy(withCode(code)), code).toBe(true);
    }
    expect(isStoreBusy(withCode(undefined, 'timeout exceeded when trying to connect'))).toBe(true);
  });

  it('leaves every other error alone', () => {
    for (const code of ['23505', '42P01', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_ERROR']) {
      expect(isStoreBusy(withCode(code)), code).toBe(false);
      expect(translateStoreError(withCode(code))).toBeUndefined();
    }
    expect(isStoreBusy(undefined)).toBe(false);
    expect(isStoreBusy('SQLITE_BUSY')).toBe(false);
  });

  it('translates a busy error into store_busy, keeping the original as the cause', () => {
    const original = withCode('55P03', 'canceling statement due to lock timeout');
    const translated = translateStoreError(original);
    expect(isVaultError(translated)).toBe(true);
    expect([translated?.code, translated?.status]).toEqual(['store_busy', 503]);
    expect(translated?.cause).toBe(original);
    expect(translated?.message).not.toContain('canceling');
  });
});
