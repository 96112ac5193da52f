import { describe, expect, it } from 'vitest';
import { AuditInputError, limits, looksSecret, toChainedFields } from './audit-event.js';
import type { AuditAction, AuditEventInput } from './audit-types.js';

const stamp = { id: 'e1', time: '2026-06-01T12:00:00.000Z' };
const input = (over: Partial<AuditEventInput> = {}): AuditEventInput => ({
  namespace: 'default',
  actor: { type: 'admin', id: 'tok-1' },
  action: 'credential.create',
  target: { type: 'credential', id: 'slack' },
  decision: 'allow',
  reason: 'ok',
  client: { ip: '127.0.0.1', userAgent: 'curl/8' },
  requestId: 'req_1',
  details: { method: 'POST' },
  ...over,
});

const agentKey = `tv_agent_${'A'.repeat(43)}`;
const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZ2VudC00MiJ9.c2lnbmF0dXJlLWJ5dGVz';

describe('audit event input', () => {
  it('maps an event onto the stored columns', () => {
    expect(toChainedFields(input(), stamp)).toEqual({
      id: 'e1',
      time: stamp.time,
      namespace: 'default',
      actor_type: 'admin',
      actor_id: 'tok-1',
      action: 'credential.create',
      target_type: 'credential',
      target_id: 'slack',
      decision: 'allow',
      reason: 'ok',
      client_ip: '127.0.0.1',
      user_agent: 'curl/8',
      request_id: 'req_1',
      details: '{"method":"POST"}',
    });
    const bare = toChainedFields(
      input({ target: undefined, client: undefined, requestId: undefined }),
      stamp,
    );
    expect([bare.target_type, bare.target_id, bare.client_ip, bare.user_agent, bare.request_id]).toEqual([
      null,
      null,
      null,
      null,
      null,
    ]);
  });

  it('recognises tokens, JWTs and private keys', () => {
    expect(looksSecret(agentKey)).toBe(true);
    expect(looksSecret(`Bearer tv_admin_${'x'.repeat(40)}`)).toBe(true);
    expect(looksSecret(`tv_proxy_${'b'.repeat(40)}`)).toBe(true);
    expect(looksSecret(jwt)).toBe(true);
    expect(looksSecret('-----BEGIN EC PRIVATE KEY-----')).toBe(true);
    expect(looksSecret('slack')).toBe(false);
    expect(looksSecret('tv_agent_')).toBe(false);
    expect(looksSecret('6f1c2d7e-0a4b-4c5d-8e9f-0123456789ab')).toBe(false);
  });

  it('redacts a token-shaped details value, naming the key but never the value', () => {
    const redactedKeys: string[] = [];
    const fields = toChainedFields(
      input({ details: { presented: agentKey, scopes: ['read', `x${jwt}`], n: 3 } }),
      stamp,
      (key) => redactedKeys.push(key),
    );
    expect(JSON.parse(fields.details)).toEqual({
      n: 3,
      presented: '[redacted]',
      scopes: ['read', 'x[redacted]'],
    });
    expect(fields.details).not.toContain('AAAA');
    expect(redactedKeys).toEqual(['presented', 'scopes']);
  });

  it('replaces a token-shaped part of client-supplied text instead of failing the request', () => {
    const fields = toChainedFields(
      input({
        client: { ip: '10.0.0.1', userAgent: `bot ${agentKey}` },
        target: { type: 'credential', id: jwt },
      }),
      stamp,
    );
    expect(fields.user_agent).toBe('bot [redacted]');
    expect(fields.target_id).toBe('[redacted]');
  });

  it('caps lengths and removes control characters and lone surrogates', () => {
    const fields = toChainedFields(
      input({
        client: { ip: null, userAgent: 'u'.repeat(5000) },
        target: { type: 'credential', id: 'a\u0000b\nc\uD800' },
        details: { note: 'n'.repeat(5000), list: Array.from({ length: 500 }, (_, i) => `s${i}`) },
      }),
      stamp,
    );
    expect(fields.user_agent).toHaveLength(limits.userAgent);
    expect(fields.user_agent?.endsWith('…')).toBe(true);
    expect(fields.target_id).toBe('a\uFFFDb\uFFFDc\uFFFD');
    const details = JSON.parse(fields.details) as { note: string; list: string[] };
    expect(details.note).toHaveLength(limits.detailString);
    expect(details.list).toHaveLength(limits.detailArrayItems);
  });

  it('never cuts a surrogate pair in half', () => {
    const fields = toChainedFields(
      input({ client: { ip: null, userAgent: `${'u'.repeat(510)}😀😀` } }),
      stamp,
    );
    expect(fields.user_agent).toBe(`${'u'.repeat(510)}…`);
  });

  it('refuses a malformed action, decision, actor or details', () => {
    expect(() => toChainedFields(input({ action: 'Create' as AuditAction }), stamp)).toThrow(AuditInputError);
    expect(() => toChainedFields(input({ action: 'credential' as AuditAction }), stamp)).toThrow(
      AuditInputError,
    );
    expect(() => toChainedFields(input({ decision: 'maybe' as 'allow' }), stamp)).toThrow(AuditInputError);
    expect(() => toChainedFields(input({ actor: { type: 'root' as 'admin', id: null } }), stamp)).toThrow(
      AuditInputError,
    );
    expect(() => toChainedFields(input({ details: { n: Number.NaN } }), stamp)).toThrow(AuditInputError);
    expect(() => toChainedFields(input({ details: { 'bad key': 1 } }), stamp)).toThrow(AuditInputError);
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i]));
    expect(() => toChainedFields(input({ details: many }), stamp)).toThrow(AuditInputError);
  });
});
