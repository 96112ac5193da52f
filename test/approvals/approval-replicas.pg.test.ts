import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { attach, createPolicy } from '../policies/policy-fixtures.js';
import { addAgent, addCredential, grant, type TestAgent } from '../retrieval/retrieval-fixtures.js';

/**
 * Approvals across two replicas on one PostgreSQL database: concurrent parked requests on both share
 * one approval (one question to the approvers), and a one-request approval lets exactly one of many
 * concurrent retries through, whichever replica each reaches.
 */
describePostgres('approvals across two replicas', () => {
  let database: TestDatabase;
  const dirs: TempDataDir[] = [];
  const replicas: TestVault[] = [];
  let agent: TestAgent;
  let aliceToken: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    const masterKey = randomBytes(32).toString('base64');
    for (let i = 0; i < 2; i += 1) {
      const dir = await createTempDataDir();
      dirs.push(dir);
      if (i > 0) writeFileSync(join(dir.dir, 'admin-token'), replicas[0]!.rootToken, { mode: 0o600 });
      replicas.push(
        await startTestVault({ dataDir: dir.dir, databaseUrl: database.url, settings: { masterKey } }),
      );
    }
    const [a] = replicas as [TestVault, TestVault];
    await addCredential(a, { name: 'prod', type: 'api_key', secret: { api_key: 'prod-replicas' } });
    agent = await addAgent(a, 'agent-r');
    await grant(a, { agent: 'agent-r', credential: 'prod', until_revoked: true, reveal: true });
    await createPolicy(
      a,
      'name: prod-approval\nrules:\n  - approval: { approvers: [alice], timeout: 10m }\n',
    );
    await attach(a, 'prod-approval', 'credential', 'prod');
    const alice = await a.request('POST', '/v1/admin/tokens', { body: { name: 'alice', role: 'approver' } });
    aliceToken = (alice.body as { token: string }).token;
  }, 60_000);

  afterAll(async () => {
    for (const vault of replicas) await vault.stop();
    for (const dir of dirs) await dir.cleanup();
    await database?.drop();
  });

  const ask = (i: number, query = '') =>
    replicas[i % 2]!.request('GET', `/v1/agents/agent-r/credentials/prod${query}`, { token: agent.apiKey });

  it('shares one pending approval between concurrent requests, and spends a one-request approval once', async () => {
    const parked = await Promise.all(Array.from({ length: 12 }, (_, i) => ask(i)));
    expect(parked.map((r) => r.status)).toEqual(Array(12).fill(202));
    const ids = new Set(parked.map((r) => (r.body as { approval: { id: string } }).approval.id));
    expect(ids.size).toBe(1);
    const [id] = [...ids] as [string];
    const [a] = replicas as [TestVault, TestVault];
    const created = await a.vault.store.db
      .selectFrom('audit_events')
      .select('details')
      .where('action', '=', 'approval.request')
      .execute();
    expect(created.filter((e) => JSON.parse(e.details).reused === false)).toHaveLength(1);

    // Decided on the other replica than most of the requests went through.
    const approved = await replicas[1]!.request('POST', `/v1/admin/approvals/${id}/approve`, {
      body: {},
      token: aliceToken,
    });
    expect(approved.status, approved.text).toBe(200);

    const retries = await Promise.all(Array.from({ length: 12 }, (_, i) => ask(i, `?approval=${id}`)));
    const statuses = retries.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(
      retries.filter((r) => r.status !== 200).map((r) => (r.body as { error: { code: string } }).error.code),
    ).toEqual(Array(11).fill('approval_used'));
  }, 60_000);
});
