import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AeadError, aeadIvLength, aeadTagLength, decodeBase64, decodeBase64Url, open, seal } from './aead.js';

const key = randomBytes(32);
const aad = Buffer.from('context');

describe('aead', () => {
  it('round-trips and lays out iv | ciphertext | tag', () => {
    const plaintext = Buffer.from('hello, vault');
    const sealed = seal(key, plaintext, aad);
    expect(sealed.length).toBe(aeadIvLength + plaintext.length + aeadTagLength);
    expect(open(key, sealed, aad)).toEqual(plaintext);
  });

  it('uses a fresh IV for every seal', () => {
    const a = seal(key, Buffer.from('x'), aad);
    const b = seal(key, Buffer.from('x'), aad);
    expect(a.subarray(0, aeadIvLength)).not.toEqual(b.subarray(0, aeadIvLength));
  });

  it('round-trips an empty plaintext', () => {
    expect(open(key, seal(key, Buffer.alloc(0), aad), aad)).toEqual(Buffer.alloc(0));
  });

  it('rejects another AAD, another key, a flipped bit and a short box with AeadError', () => {
    const sealed = seal(key, Buffer.from('secret'), aad);
    expect(() => open(key, sealed, Buffer.from('other'))).toThrow(AeadError);
    expect(() => open(randomBytes(32), sealed, aad)).toThrow(AeadError);
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const tampered = Buffer.from(sealed);
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      expect(() => open(key, tampered, aad)).toThrow(AeadError);
    }
    expect(() => open(key, sealed.subarray(0, 20), aad)).toThrow(AeadError);
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => seal(randomBytes(16), Buffer.from('x'), aad)).toThrow(AeadError);
    expect(() => open(randomBytes(31), Buffer.alloc(40), aad)).toThrow(AeadError);
  });
});

describe('strict base64 decoders', () => {
  it('accept only the canonical encoding', () => {
    const bytes = randomBytes(32);
    expect(decodeBase64Url(bytes.toString('base64url'))).toEqual(bytes);
    expect(decodeBase64(bytes.toString('base64'))).toEqual(bytes);
    expect(decodeBase64Url('ab$c')).toBeUndefined();
    expect(decodeBase64Url('AB')).toBeUndefined(); // non-zero unused bits
    expect(decodeBase64('AQ')).toBeUndefined(); // padding required
    expect(decodeBase64('AQ==\n')).toBeUndefined();
    expect(decodeBase64('AQ==')).toEqual(Buffer.from([1]));
  });
});
