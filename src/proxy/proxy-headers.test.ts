import { describe, expect, it } from 'vitest';
import { isVaultError } from '../errors/vault-error.js';
import { agentResponseHeaders, renderInjections, upstreamRequestHeaders } from './proxy-headers.js';
import { createRedactor, scannableBody, secretsToRedact } from './redaction.js';

const flat = (headers: Record<string, string>) => Object.entries(headers).flat();

describe('upstreamRequestHeaders', () => {
  it('drops hop-by-hop, the agent’s credentials and the vault’s own headers; sets Host and the injection', () => {
    const out = upstreamRequestHeaders(
      [
        ...flat({
          Host: 'vault.example',
          Authorization: 'Bearer tv_agent_abc',
          Cookie: 'a=1',
          Connection: 'keep-alive, X-Hop',
          'X-Hop': '1',
          'Keep-Alive': 'timeout=5',
          TE: 'trailers',
          Trailer: 'x',
          Upgrade: 'websocket',
          'Proxy-Authorization': 'Basic x',
          'X-TokenVault-Namespace': 'ns',
          'X-Forwarded-For': '10.0.0.1',
          'Accept-Encoding': 'gzip',
          'Content-Type': 'application/json',
          'X-Api-Key': 'agent-chosen',
        }),
        'Accept',
        'a',
        'accept',
        'b',
      ],
      [['X-Api-Key', 'injected']],
      'api.example.com',
    );
    expect(out).toEqual({
      host: 'api.example.com',
      'accept-encoding': 'identity',
      'content-type': 'application/json',
      'x-api-key': 'injected',
      accept: ['a', 'b'],
    });
  });

  it('refuses a request with two Host headers', () => {
    try {
      upstreamRequestHeaders(['Host', 'a', 'host', 'b'], [], 'api.example.com');
      expect.unreachable();
    } catch (error) {
      expect(isVaultError(error) && error.code).toBe('proxy_header_refused');
    }
  });
});

describe('renderInjections', () => {
  it('renders header and query injections, and Basic from its derived field', () => {
    expect(
      renderInjections('basic', [{ in: 'header', name: 'Authorization', template: 'Basic {{basic_auth}}' }], {
        username: 'u',
        password: 'p',
      }),
    ).toEqual({ headers: [['Authorization', `Basic ${Buffer.from('u:p').toString('base64')}`]], query: [] });
    expect(
      renderInjections('custom', [{ in: 'query', name: 'key', template: '{{a}}-{{b}}' }], { a: '1', b: '2' }),
    ).toEqual({ headers: [], query: [['key', '1-2']] });
  });

  it('refuses an env injection and a secret holding CR or LF', () => {
    for (const [injection, secret] of [
      [{ in: 'env', name: 'TOKEN', template: '{{token}}' }, { token: 'abc' }],
      [{ in: 'header', name: 'X-Key', template: '{{token}}' }, { token: 'a\r\nInjected: b' }],
    ] as const) {
      try {
        renderInjections('bearer', [injection], secret);
        expect.unreachable();
      } catch (error) {
        expect(isVaultError(error) && error.code).toBe('proxy_injection_unsupported');
      }
    }
  });
});

describe('redaction', () => {
  it('takes secrets, derived values and their base64 out of headers and bytes, counting them', () => {
    const secrets = secretsToRedact('basic', { username: 'alice', password: 'hunter2-long' });
    const basic = Buffer.from('alice:hunter2-long').toString('base64');
    expect(secrets).toContain('hunter2-long');
    expect(secrets).toContain(basic);
    expect(secrets).not.toContain('alice');
    const redact = createRedactor(secrets);
    const headers = agentResponseHeaders(
      { 'x-echo': `Basic ${basic}`, connection: 'close', 'set-cookie': ['a=1'], 'retry-after': '3' },
      redact,
    );
    expect(headers).toEqual({ 'x-echo': 'Basic [REDACTED]', 'retry-after': '3' });
    expect(redact.bytes(Buffer.from(`{"p":"hunter2-long","q":"hunter2-long"}`)).toString()).toBe(
      '{"p":"[REDACTED]","q":"[REDACTED]"}',
    );
    expect(redact.count()).toBe(3);
  });

  it('scans text and JSON that is not compressed, nothing else', () => {
    expect(scannableBody({ 'content-type': 'application/json; charset=utf-8' })).toBe(true);
    expect(scannableBody({ 'content-type': 'application/vnd.api+json' })).toBe(true);
    expect(scannableBody({ 'content-type': 'text/html' })).toBe(true);
    expect(scannableBody({ 'content-type': 'text/plain', 'content-encoding': 'gzip' })).toBe(false);
    expect(scannableBody({ 'content-type': 'application/octet-stream' })).toBe(false);
    expect(scannableBody({})).toBe(false);
  });
});
