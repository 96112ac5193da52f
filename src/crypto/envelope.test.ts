import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isVaultError } from '../errors/vault-error.js';
import { decryptField, encryptField, type FieldAad, fieldFormat, newDataKey } from './envelope.js';

const dek = newDataKey();
const dekId = randomUUID();
const aad: FieldAad = { namespace: 'default', credentialId: randomUUID(), version: 1, field: 'access_token' };

const expectDecryptionFailed = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(isVaultError(error) && error.code).toBe('decryption_failed');
    return (error as Error).message;
  }
  throw new Error('expected decryption_failed');
};

describe('envelope field encryption', () => {
  it('round-trips strings and buffers', () => {
    const ciphertext = encryptField(dek, dekId, aad, 'xoxb-secret');
    expect(decryptField(dek, dekId, aad, ciphertext).toString('utf8')).toBe('xoxb-secret');
    const bytes = Buffer.from([0, 1, 2, 255]);
    expect(decryptField(dek, dekId, aad, encryptField(dek, dekId, aad, bytes))).toEqual(bytes);
  });

  it('writes tv1.<dekId>.<base64url> and never the plaintext', () => {
    const ciphertext = encryptField(dek, dekId, aad, 'xoxb-secret');
    const [format, id, body, ...rest] = ciphertext.split('.');
    expect([format, id, rest.length]).toEqual([fieldFormat, dekId, 0]);
    expect(body).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(ciphertext).not.toContain('xoxb');
  });

  it.each([
    ['credential id', { credentialId: randomUUID() }],
    ['namespace', { namespace: 'other' }],
    ['field', { field: 'refresh_token' }],
    ['version', { version: 2 }],
  ])('fails when moved to another %s', (_, change) => {
    const ciphertext = encryptField(dek, dekId, aad, 'secret');
    expectDecryptionFailed(() => decryptField(dek, dekId, { ...aad, ...change }, ciphertext));
  });

  it('does not let a separator inside a value collide with the next value', () => {
    const a = { namespace: 'a', credentialId: 'b","c', version: 1, field: 'f' };
    const b = { namespace: 'a","b', credentialId: 'c', version: 1, field: 'f' };
    expectDecryptionFailed(() => decryptField(dek, dekId, b, encryptField(dek, dekId, a, 'x')));
  });

  it('fails on one flipped bit anywhere in the sealed body', () => {
    const ciphertext = encryptField(dek, dekId, aad, 'secret');
    const prefix = ciphertext.slice(0, ciphertext.lastIndexOf('.') + 1);
    const sealed = Buffer.from(ciphertext.slice(prefix.length), 'base64url');
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const tampered = Buffer.from(sealed);
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      expectDecryptionFailed(() => decryptField(dek, dekId, aad, prefix + tampered.toString('base64url')));
    }
  });

  it('fails on any changed character of the ciphertext string', () => {
    const ciphertext = encryptField(dek, dekId, aad, 'secret');
    for (let i = 0; i < ciphertext.length; i++) {
      const code = ciphertext.charCodeAt(i);
      const changed = ciphertext.slice(0, i) + String.fromCharCode(code ^ 1) + ciphertext.slice(i + 1);
      expectDecryptionFailed(() => decryptField(dek, dekId, aad, changed));
    }
  });

  it('fails with the wrong DEK or the wrong dek id', () => {
    const ciphertext = encryptField(dek, dekId, aad, 'secret');
    expectDecryptionFailed(() => decryptField(newDataKey(), dekId, aad, ciphertext));
    expectDecryptionFailed(() => decryptField(dek, randomUUID(), aad, ciphertext));
    // Relabelling the ciphertext with another dek id is caught by the AAD, not only by the id check.
    const otherId = randomUUID();
    const relabelled = ciphertext.replace(dekId, otherId);
    expectDecryptionFailed(() => decryptField(dek, otherId, aad, relabelled));
  });

  it('fails on malformed input without a raw node error, and names only the location', () => {
    for (const bad of ['', 'tv1', 'tv1..', `tv2.${dekId}.AAAA`, `tv1.${dekId}.***`, `tv1.${dekId}.AA.BB`]) {
      const message = expectDecryptionFailed(() => decryptField(dek, dekId, aad, bad));
      expect(message).toContain(aad.credentialId);
      expect(message).toContain('access_token');
      expect(message).not.toContain(dek.toString('base64'));
      expect(message).not.toContain(dek.toString('hex'));
    }
    expectDecryptionFailed(() => decryptField(dek, dekId, aad, undefined as unknown as string));
  });

  it('rejects dek ids that would break the format', () => {
    expect(() => encryptField(dek, 'a.b', aad, 'x')).toThrow(TypeError);
    expect(() => encryptField(dek, dekId, { ...aad, version: 1.5 }, 'x')).toThrow(TypeError);
  });
});
