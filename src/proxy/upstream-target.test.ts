import { describe, expect, it } from 'vitest';
import { isVaultError } from '../errors/vault-error.js';
import { explicitlyAllowed, hostAllowed, upstreamQuery, upstreamTarget } from './upstream-target.js';

const codeOf = (run: () => unknown): string | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    return isVaultError(error) ? error.code : String(error);
  }
};

describe('upstreamTarget', () => {
  it('appends the path and query below the base path', () => {
    const target = upstreamTarget('https://api.example.com/v1', '/repos/o/r', 'a=1&b=x%20y');
    expect(target.url.href).toBe('https://api.example.com/v1/repos/o/r?a=1&b=x%20y');
    expect(target.path).toBe('/v1/repos/o/r');
    expect(upstreamTarget('https://api.example.com', '', '').url.href).toBe('https://api.example.com/');
    expect(upstreamTarget('https://api.example.com/v1/', '', '').url.pathname).toBe('/v1');
    // Inner `//` and a colon after the first segment stay below the base.
    expect(upstreamTarget('https://a.example/v1', '/x//y/p:batch', '').url.pathname).toBe('/v1/x//y/p:batch');
  });

  it('refuses every path that could leave the base URL, rather than normalising it', () => {
    for (const path of [
      '/..',
      '/a/../../b',
      '/./a',
      '/%2e%2e/a',
      '/%2E./a',
      '/a/.%2e',
      '/a%2fb',
      '/a%2Fb',
      '/a\\b',
      '/a%5Cb',
      '//evil.example/x',
      '/https://evil.example/x',
      '/http:/evil.example',
      '/javascript:alert(1)',
      '/a%0d%0aHost:%20x',
      '/a%00',
      '/bad%zz',
      'no-slash',
    ]) {
      expect(
        codeOf(() => upstreamTarget('https://api.example.com/v1', path, '')),
        path,
      ).toBe('proxy_path_refused');
    }
  });

  it('drops ?user= and injected parameters the agent sent, and appends the injected ones', () => {
    expect(upstreamQuery('user=bob&key=mine&k%65y=also&q=1', [['key', 's3cr&t']])).toBe('q=1&key=s3cr%26t');
    expect(upstreamQuery('', [])).toBe('');
    expect(upstreamQuery('a=1&&b', [])).toBe('a=1&b');
  });
});

describe('hostAllowed', () => {
  const url = (href: string) => new URL(href);
  it('allows only the base URL host when no hosts are listed', () => {
    expect(hostAllowed(url('https://api.example.com/x'), 'https://api.example.com', [])).toBe(true);
  });

  it('matches a listed host exactly, with its port, and a leading wildcard label', () => {
    const base = 'https://api.example.com';
    expect(hostAllowed(url('https://api.example.com/x'), base, ['api.example.com'])).toBe(true);
    expect(hostAllowed(url('https://api.example.com/x'), base, ['example.com'])).toBe(false);
    expect(hostAllowed(url('https://api.example.com:8443/x'), base, ['api.example.com'])).toBe(false);
    expect(hostAllowed(url('https://api.example.com:8443/x'), base, ['api.example.com:8443'])).toBe(true);
    expect(hostAllowed(url('https://api.example.com/x'), base, ['*.example.com'])).toBe(true);
    expect(hostAllowed(url('https://example.com/x'), base, ['*.example.com'])).toBe(false);
    expect(hostAllowed(url('https://evilexample.com/x'), base, ['*.example.com'])).toBe(false);
  });
});

describe('explicitlyAllowed', () => {
  it('names hosts and addresses for the guard, never a wildcard, without ports', () => {
    expect(explicitlyAllowed(['127.0.0.1:8080', 'internal.corp', '*.example.com', '10.0.0.5'])).toEqual({
      hosts: ['internal.corp'],
      cidrs: ['127.0.0.1/32', '10.0.0.5/32'],
    });
  });
});
