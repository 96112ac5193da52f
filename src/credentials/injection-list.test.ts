import { describe, expect, it } from 'vitest';
import { VaultError } from '../errors/vault-error.js';
import {
  injectionsForCreate,
  injectionsForUpdate,
  injectionsOf,
  parseStoredInjections,
  storedInjections,
  validateInjections,
} from './injection-list.js';

const key = { in: 'header' as const, name: 'X-Api-Key', template: '{{api_key}}' };
const secret = { in: 'header' as const, name: 'X-Api-Secret', template: '{{api_secret}}' };
const fields = ['api_key', 'api_secret'];

const codeOf = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return error instanceof VaultError ? error.code : String(error);
  }
  return 'no error';
};

describe('injection lists', () => {
  it('reads a stored single injection (every row written before lists) and writes one the same way', () => {
    const single = JSON.stringify(key);
    expect(parseStoredInjections(single)).toEqual([key]);
    expect(storedInjections([key])).toBe(single);
    const both = storedInjections([key, secret]);
    expect(JSON.parse(both)).toEqual([key, secret]);
    expect(parseStoredInjections(both)).toEqual([key, secret]);
  });

  it('reads a credential’s list, trusting `injection` alone when the list does not start with it', () => {
    expect(injectionsOf({ injection: key, injections: [key, secret] })).toEqual([key, secret]);
    expect(injectionsOf({ injection: key })).toEqual([key]);
    // `{ ...current, injection: other }`: the caller changed the main injection and meant it.
    expect(injectionsOf({ injection: secret, injections: [key, secret] })).toEqual([secret]);
  });

  it('validates each injection, the count, and refuses two into the same place', () => {
    expect(
      validateInjections([key, { in: 'query', name: 'sig', template: '{{api_secret}}' }], 'custom', fields),
    ).toHaveLength(2);
    expect(codeOf(() => validateInjections([], 'custom', fields))).toBe('invalid_injection');
    expect(codeOf(() => validateInjections(Array(11).fill(key), 'custom', fields))).toBe('invalid_injection');
    expect(codeOf(() => validateInjections([key, { ...secret, name: 'x-api-KEY' }], 'custom', fields))).toBe(
      'invalid_injection',
    );
    expect(
      codeOf(() => validateInjections([key, { ...secret, template: '{{nope}}' }], 'custom', fields)),
    ).toBe('invalid_injection');
    // A query parameter and a header may share a name.
    expect(
      validateInjections(
        [key, { in: 'query', name: 'X-Api-Key', template: '{{api_key}}' }],
        'custom',
        fields,
      ),
    ).toHaveLength(2);
  });

  it('creates with the list given, the single one given, or the type’s default; never both forms', () => {
    expect(injectionsForCreate({ injections: [key, secret] }, 'custom', fields)).toEqual([key, secret]);
    expect(injectionsForCreate({ injection: key }, 'custom', fields)).toEqual([key]);
    expect(injectionsForCreate({}, 'api_key', ['api_key'])).toEqual([
      { in: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' },
    ]);
    expect(
      codeOf(() => injectionsForCreate({ injection: key, injections: [secret] }, 'custom', fields)),
    ).toBe('invalid_injection');
  });

  it('updates: replaces with what is given, checks the current list again when the secret changes', () => {
    expect(injectionsForUpdate({}, [key, secret], 'custom', fields, false)).toEqual([key, secret]);
    expect(injectionsForUpdate({ injection: key }, [key, secret], 'custom', fields, false)).toEqual([key]);
    expect(injectionsForUpdate({ injections: [secret, key] }, [key], 'custom', fields, false)).toEqual([
      secret,
      key,
    ]);
    // The new secret lacks api_secret, which the second injection names.
    expect(codeOf(() => injectionsForUpdate({}, [key, secret], 'custom', ['api_key'], true))).toBe(
      'invalid_injection',
    );
  });
});
