import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { constantTimeEqual, hashToken } from './token-hash.js';

describe('hashToken', () => {
  it('is the hex SHA-256 of the UTF-8 text, as stored by every earlier version', () => {
    // Keys and tokens already in a database were hashed with createHash: the lookup must not change.
    for (const token of ['tv_agent_abc', 'tv_admin_Zz09-_', 'jti\nwith newline', 'ünïcødé ✓', '']) {
      expect(hashToken(token)).toBe(createHash('sha256').update(token, 'utf8').digest('hex'));
    }
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('constantTimeEqual', () => {
  it('is true only for the same text', () => {
    expect(constantTimeEqual('same-hash', 'same-hash')).toBe(true);
    expect(constantTimeEqual('same-hash', 'same-hasH')).toBe(false);
    expect(constantTimeEqual('', '')).toBe(true);
  });

  it('is false for texts of different lengths, a prefix included', () => {
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
    expect(constantTimeEqual('abcd', 'abc')).toBe(false);
    expect(constantTimeEqual('', 'a')).toBe(false);
    // Same characters, different byte lengths in UTF-8.
    expect(constantTimeEqual('é', 'e')).toBe(false);
  });
});
