import { type KyselyPlugin, TableNode, UpdateQueryNode } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/lib/clock.js';
import { authenticateProxyKey } from '../../src/mcp-proxy/proxy-key-auth.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { ok } from './mcp-proxy-fixtures.js';

/**
 * A proxy key's `last_used_at` is bookkeeping written at most once a minute, and only then is an
 * UPDATE sent: on SQLite an UPDATE takes the write lock even when it changes no row, and waited on
 * the event loop for the audit thread's commit at every proxied request (bench section mcp-proxy).
 */
describe('proxy key last use', () => {
  let t: TestVault;
  let key: string;
  let offsetMs = 0;
  const clock: Clock = { now: () => new Date(Date.UTC(2026, 10, 27, 10) + offsetMs) };
  const updates: string[] = [];
  // Records the tables of the UPDATE statements sent through this handle; the store is the real one.
  const recordUpdates: KyselyPlugin = {
    transformQuery: ({ node }) => {
      if (UpdateQueryNode.is(node) && node.table && TableNode.is(node.table))
        updates.push(node.table.table.identifier.name);
      return node;
    },
    transformResult: ({ result }) => Promise.resolve(result),
  };

  beforeAll(async () => {
    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1' } });
    await ok(t, 'POST', '/v1/admin/credentials', {
      name: 'touch-token',
      type: 'api_key',
      secret: { api_key: 'sk-touch-test' },
    });
    await ok(t, 'POST', '/v1/admin/agents', { name: 'touch-agent' });
    await ok(t, 'POST', '/v1/admin/grants', {
      agent: 'touch-agent',
      credential: 'touch-token',
      until_revoked: true,
    });
    await ok(t, 'POST', '/v1/admin/mcp-proxies', {
      name: 'touch',
      url: 'http://127.0.0.1:9/mcp',
      credential: 'touch-token',
      injections: [{ in: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
    });
    key = (await ok(t, 'POST', '/v1/admin/mcp-proxies/touch/keys', { agent: 'touch-agent' })).key as string;
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
  });

  const lastUsed = async () =>
    (await ok(t, 'GET', '/v1/admin/mcp-proxies/touch/keys')).items as { last_used_at: string | null }[];

  it('writes last_used_at on first use and once a minute after, with no UPDATE in between', async () => {
    const db = t.vault.store.db.withPlugin(recordUpdates);
    await authenticateProxyKey(db, clock, key, 'touch');
    expect(updates).toEqual(['mcp_proxy_keys']);
    const first = (await lastUsed())[0]?.last_used_at;
    expect(first).toBe(clock.now().toISOString());

    for (const seconds of [1, 30, 59]) {
      offsetMs = seconds * 1000;
      await authenticateProxyKey(db, clock, key, 'touch');
    }
    expect(updates).toEqual(['mcp_proxy_keys']);
    expect((await lastUsed())[0]?.last_used_at).toBe(first);

    offsetMs = 61_000;
    await authenticateProxyKey(db, clock, key, 'touch');
    expect(updates).toEqual(['mcp_proxy_keys', 'mcp_proxy_keys']);
    expect((await lastUsed())[0]?.last_used_at).toBe(clock.now().toISOString());
  });
});
