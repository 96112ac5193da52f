import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, addCredential, grant, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { attach, createPolicy, detach, retrieveFrom } from './policy-fixtures.js';

/**
 * Issue 15: "a policy change or detach takes effect on the very next request, on every replica". Two
 * vaults on one PostgreSQL database, each with its own access cache warmed by requests; every change
 * is made on one and the very next request on the other follows it (migration 0010's rules move the
 * access generation and the namespace's policy scope).
 */
describePostgres('policies across two replicas', () => {
  const clock = fixedClock('2026-11-25T09:00:00Z');
  let database: TestDatabase;
  const dirs: TempDataDir[] = [];
  const replicas: TestVault[] = [];
  let agent: TestAgent;

  beforeAll(async () => {
    database = await createTestDatabase();
    const masterKey = randomBytes(32).toString('base64');
    for (let i = 0; i < 2; i += 1) {
      const dir = await createTempDataDir();
      dirs.push(dir);
      if (i > 0) writeFileSync(join(dir.dir, 'admin-token'), replicas[0]!.rootToken, { mode: 0o600 });
      replicas.push(
        await startTestVault({ dataDir: dir.dir, databaseUrl: database.url, clock, settings: { masterKey } }),
      );
    }
    const [a] = replicas as [TestVault, TestVault];
    await addCredential(a, { name: 'notion', type: 'api_key', secret: { api_key: 'ntn-replicas' } });
    agent = await addAgent(a, 'agent-b');
    await grant(a, { agent: 'agent-b', credential: 'notion', until_revoked: true, reveal: true });
  });

  afterAll(async () => {
    for (const vault of replicas) await vault.stop();
    for (const dir of dirs) await dir.cleanup();
    await database?.drop();
  });

  it('holds an attach, an update and a detach made on one replica on the other’s next request', async () => {
    const [a, b] = replicas as [TestVault, TestVault];
    const outside = '198.51.100.7';
    // Both caches warm: the namespace's (empty) attachments are cached on each.
    for (const vault of replicas) {
      expect((await retrieveFrom(vault, agent, 'notion', outside)).status).toBe(200);
      expect((await retrieveFrom(vault, agent, 'notion', outside)).status).toBe(200);
    }

    await createPolicy(a, 'name: office\nrules:\n  - ip_allowlist: { cidrs: [203.0.113.0/24] }\n');
    expect((await retrieveFrom(b, agent, 'notion', outside)).status).toBe(200);
    await attach(a, 'office', 'credential', 'notion');
    const refused = await retrieveFrom(b, agent, 'notion', outside);
    expect([refused.status, refused.body.error?.code]).toEqual([403, 'policy_denied']);
    expect(refused.body.error?.message).toContain('Refused by policy "office", rule 0 (ip_allowlist)');
    expect((await retrieveFrom(b, agent, 'notion', '203.0.113.9')).status).toBe(200);

    // Changed on b, followed on a (whose cache holds the first version).
    expect((await retrieveFrom(a, agent, 'notion', outside)).status).toBe(403);
    const widened = await b.request('PUT', '/v1/admin/policies/office', {
      body: { document: 'name: office\nrules:\n  - ip_allowlist: { cidrs: [198.51.100.0/24] }\n' },
    });
    expect(widened.status, widened.text).toBe(200);
    expect((await retrieveFrom(a, agent, 'notion', outside)).status).toBe(200);
    expect((await retrieveFrom(a, agent, 'notion', '203.0.113.9')).status).toBe(403);

    await detach(b, 'office', 'credential', 'notion');
    expect((await retrieveFrom(a, agent, 'notion', '203.0.113.9')).status).toBe(200);

    // A policy removed (forced, attached) on one replica no longer binds on the other.
    await attach(a, 'office', 'agent', 'agent-b');
    expect((await retrieveFrom(b, agent, 'notion', '203.0.113.9')).status).toBe(403);
    expect((await a.request('DELETE', '/v1/admin/policies/office?force=true')).status).toBe(200);
    expect((await retrieveFrom(b, agent, 'notion', '203.0.113.9')).status).toBe(200);
  });

  it('keeps the generation still for requests that change nothing, and moves it once per change', async () => {
    const [a] = replicas as [TestVault, TestVault];
    const generation = async () =>
      Number(
        (
          await a.vault.store.db
            .selectFrom('access_generation')
            .select('value')
            .where('id', '=', 1)
            .executeTakeFirstOrThrow()
        ).value,
      );
    const before = await generation();
    await retrieveFrom(a, agent, 'notion');
    expect(await generation()).toBe(before);
    await createPolicy(a, 'name: quiet\nrules:\n  - rate_limit: { requests: 1000, per: 1m }\n');
    expect(await generation()).toBeGreaterThan(before);
    const changes = await a.vault.store.db
      .selectFrom('access_changes')
      .select('scope')
      .where('scope', '=', 'p:default')
      .execute();
    expect(changes).toHaveLength(1);
  });
});
