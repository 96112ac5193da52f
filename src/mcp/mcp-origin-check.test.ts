import { describe, expect, it } from 'vitest';
import { originAllowed, publicOriginsOf } from './mcp-origin-check.js';

describe('originAllowed', () => {
  const publicOrigins = publicOriginsOf('https://vault.example.com/some/path');

  it('allows no Origin (not a browser), the vault’s own origin and loopback pages', () => {
    expect(originAllowed(undefined, publicOrigins)).toBe(true);
    expect(originAllowed('https://vault.example.com', publicOrigins)).toBe(true);
    for (const origin of ['http://localhost:6274', 'http://127.0.0.1', 'https://[::1]:8443']) {
      expect(originAllowed(origin, publicOrigins), origin).toBe(true);
    }
  });

  it('refuses every other origin, a look-alike of the vault, and what is not an http(s) origin', () => {
    for (const origin of [
      'https://evil.example',
      'http://vault.example.com',
      'https://vault.example.com:8443',
      'https://vault.example.com.evil.example',
      'http://localhost.evil.example',
      'null',
      'file://',
      'chrome-extension://abc',
      '',
    ]) {
      expect(originAllowed(origin, publicOrigins), origin).toBe(false);
    }
  });

  it('has no public origin for a public URL that is not a URL', () => {
    expect(publicOriginsOf('not a url')).toEqual([]);
  });
});
