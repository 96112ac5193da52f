import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { postgresLimits } from '../../src/store/database.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, addCredential, errorOf, grant, retrieve } from '../retrieval/retrieval-fixtures.js';

const metricValue = (text: string, line: string): number => {
  const found = text.split('\n').find((l) => l.startsWith(line));
  return found ? Number(found.slice(line.length).trim()) : 0;
};

/**
 * Every wait on PostgreSQL is bounded: a lock held by another session (a stuck replica, a person with
 * a SQL shell) makes a request fail with a stable code within the pool's lock_timeout, never hang.
 */
describePostgres('bounded waits on PostgreSQL', () => {
  let database: TestDatabase;
  let t: TestVault;
  let other: pg.Client;
  beforeAll(async () => {
    database = await createTestDatabase();
    t = await startTestVault({
      databaseUrl: database.url,
      settings: { masterKey: randomBytes(32).toString('base64') },
    });
    other = new pg.Client({ connectionString: database.url });
    await other.connect();
  });
  afterAll(async () => {
    await other?.end();
    await t?.stop();
    await database?.drop();
  });

  it('sets lock, statement and idle-in-transaction timeouts on every pooled connection', async () => {
    const show = async (name: string) =>
      Object.values((await sql.raw(`show ${name}`).execute(t.vault.store.db)).rows[0] as object)[0];
    expect(await show('lock_timeout')).toBe(`${postgresLimits.lockTimeoutMs / 1000}s`);
    expect(await show('statement_timeout')).toBe(`${postgresLimits.statementTimeoutMs / 1000}s`);
    expect(await show('idle_in_transaction_session_timeout')).toBe(
      `${postgresLimits.idleInTransactionMs / 1000}s`,
    );
    expect(await show('tcp_keepalives_idle')).toBe(String(postgresLimits.keepAliveDelayMs / 1000));
  });

  it('answers 503 store_busy within the lock timeout when a table stays locked, and counts it', async () => {
    expect((await t.request('GET', '/v1/admin/tokens')).status).toBe(200);
    await other.query('begin');
    await other.query('lock table admin_tokens in access exclusive mode');
    const started = performance.now();
    let refused;
    try {
      refused = await t.request('POST', '/v1/admin/tokens', { body: { name: 'while-locked' } });
    } finally {
      await other.query('rollback');
    }
    const waited = performance.now() - started;
    expect(refused.status, refused.text).toBe(503);
    expect(errorOf(refused.body).code).toBe('store_busy');
    expect(waited).toBeLessThan(postgresLimits.lockTimeoutMs + 2000);
    const metrics = (await t.request('GET', '/metrics', { token: null })).text;
    expect(metricValue(metrics, 'tokenvault_store_lock_timeouts_total{code="store_busy"}')).toBe(1);
  });

  it('fails a retrieval closed with audit_unavailable, not a hang, when the chain head stays locked', async () => {
    await addCredential(t, { name: 'slack', type: 'api_key', secret: { api_key: 'xoxb-test' } });
    const agent = await addAgent(t, 'agent-42');
    await grant(t, { agent: 'agent-42', credential: 'slack', ttl: '24h', reveal: true });
    expect((await retrieve(t, agent, { agent: 'agent-42', service: 'slack' })).status).toBe(200);

    await other.query('begin');
    await other.query('select * from audit_head where id = 1 for update');
    const started = performance.now();
    let refused;
    try {
      refused = await retrieve(t, agent, { agent: 'agent-42', service: 'slack' });
    } finally {
      await other.query('rollback');
    }
    expect(performance.now() - started).toBeLessThan(postgresLimits.lockTimeoutMs + 2000);
    expect(refused.status, refused.text).toBe(503);
    expect(errorOf(refused.body).code).toBe('audit_unavailable');
    expect(refused.text).not.toContain('xoxb-test');
    const metrics = (await t.request('GET', '/metrics', { token: null })).text;
    expect(metricValue(metrics, 'tokenvault_store_lock_timeouts_total{code="audit_unavailable"}')).toBe(1);
    expect((await retrieve(t, agent, { agent: 'agent-42', service: 'slack' })).status).toBe(200);
  });
});
