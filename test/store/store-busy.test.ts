import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteFileName } from '../../src/store/database.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, addCredential, errorOf, grant, retrieve } from '../retrieval/retrieval-fixtures.js';

const metricValue = (text: string, line: string): number => {
  const found = text.split('\n').find((l) => l.startsWith(line));
  return found ? Number(found.slice(line.length).trim()) : 0;
};

/**
 * Lock contention on SQLite ends in an error a person can act on: when another connection holds the
 * write lock past the main connection's busy_timeout, the change is refused with 503 `store_busy`
 * (nothing written), and the refusal is counted.
 */
describe('store_busy on SQLite', () => {
  let t: TestVault;
  let other: SQLite.Database;
  beforeAll(async () => {
    t = await startTestVault();
    other = new SQLite(join(t.dataDir, sqliteFileName));
  });
  afterAll(async () => {
    other.close();
    await t.stop();
  });

  it('refuses a change with 503 store_busy when the write lock stays taken, and counts it', async () => {
    // The token's last_used_at is written now, not under the lock below.
    expect((await t.request('GET', '/v1/admin/tokens')).status).toBe(200);
    other.exec('begin immediate');
    let refused;
    try {
      refused = await t.request('POST', '/v1/admin/tokens', { body: { name: 'while-locked' } });
    } finally {
      other.exec('rollback');
    }
    expect(refused.status, refused.text).toBe(503);
    expect((refused.body as { error: { code: string } }).error.code).toBe('store_busy');
    const metrics = (await t.request('GET', '/metrics', { token: null })).text;
    expect(metricValue(metrics, 'tokenvault_store_lock_timeouts_total{code="store_busy"}')).toBe(1);

    const list = (await t.request('GET', '/v1/admin/tokens')).body as { items: { name: string }[] };
    expect(list.items.map((item) => item.name)).not.toContain('while-locked');
    const after = await t.request('POST', '/v1/admin/tokens', { body: { name: 'after-unlock' } });
    expect(after.status, after.text).toBe(201);
  });

  it('fails a retrieval closed with audit_unavailable when the audit thread cannot get the lock, and counts it', async () => {
    await addCredential(t, { name: 'slack', type: 'api_key', secret: { api_key: 'xoxb-test' } });
    const agent = await addAgent(t, 'agent-42');
    await grant(t, { agent: 'agent-42', credential: 'slack', ttl: '24h', reveal: true });
    expect((await retrieve(t, agent, { agent: 'agent-42', service: 'slack' })).status).toBe(200);
    other.exec('begin immediate');
    let refused;
    try {
      refused = await retrieve(t, agent, { agent: 'agent-42', service: 'slack' });
    } finally {
      other.exec('rollback');
    }
    expect([refused.status, errorOf(refused.body).code]).toEqual([503, 'audit_unavailable']);
    expect(refused.text).not.toContain('xoxb-test');
    const metrics = (await t.request('GET', '/metrics', { token: null })).text;
    expect(metricValue(metrics, 'tokenvault_store_lock_timeouts_total{code="audit_unavailable"}')).toBe(1);
  });
});
