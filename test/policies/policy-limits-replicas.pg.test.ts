import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, addCredential, grant, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { attach, createPolicy, retrieveFrom } from './policy-fixtures.js';

/**
 * Issue 15: "two vault processes on one PostgreSQL never let more than N requests through a rate limit
 * or usage cap between them under concurrent load (count what the agents received)". Two vaults, each
 * with its own store (its own connection pool, access cache and audit writer), on one database; many
 * concurrent retrievals alternate between them. The counters live in the shared database
 * (`src/policy/store-counters.ts`), so exactly N answers carry the secret, whatever the interleaving,
 * and the audit trail both replicas wrote says the same.
 */
describePostgres('rate limits and usage caps across two replicas', () => {
  const clock = fixedClock('2026-11-25T09:00:00Z');
  const limit = 25;
  const attempts = 80;
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
    agent = await addAgent(a, 'agent-b');
    for (const name of ['notion', 'github']) {
      await addCredential(a, { name, type: 'api_key', secret: { api_key: `${name}-secret` } });
      await grant(a, { agent: 'agent-b', credential: name, until_revoked: true, reveal: true });
    }
  });

  afterAll(async () => {
    for (const vault of replicas) await vault.stop();
    for (const dir of dirs) await dir.cleanup();
    await database?.drop();
  });

  /** `attempts` retrievals all in flight at once, alternating between the replicas. */
  const burst = (credential: string) =>
    Promise.all(
      Array.from({ length: attempts }, (_, i) => retrieveFrom(replicas[i % 2]!, agent, credential)),
    );

  /** What the audit trail (written by both replicas into the one database) says about a credential. */
  const auditedRetrievals = async (credentialName: string) => {
    const [a] = replicas as [TestVault, TestVault];
    const rows = await a.vault.store.db
      .selectFrom('audit_events')
      .select(['decision', 'reason'])
      .where('action', '=', 'credential.retrieve')
      .where('actor_id', '=', agent.id)
      .where('target_id', '=', credentialName)
      .execute();
    const count = (decision: string, reason?: string) =>
      rows.filter((row) => row.decision === decision && (reason === undefined || row.reason === reason))
        .length;
    return { total: rows.length, count };
  };

  const expectExactly = async (
    credential: string,
    responses: Awaited<ReturnType<typeof burst>>,
    code: 'rate_limited' | 'usage_cap_exhausted',
  ) => {
    const answered = responses.filter((r) => r.status === 200);
    const refused = responses.filter((r) => r.status === 429);
    // Counted from what the agents received: the secret exactly `limit` times, a refusal for the rest.
    expect(answered).toHaveLength(limit);
    expect(refused).toHaveLength(attempts - limit);
    for (const response of answered) {
      expect((response.body as { access_token?: string }).access_token).toBe(`${credential}-secret`);
    }
    for (const response of refused) {
      expect(response.body.error?.code).toBe(code);
      // A rate limit says when its window resets; a lifetime cap never does, so it names no time.
      if (code === 'rate_limited') expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
      else expect(response.headers['retry-after']).toBeUndefined();
    }
    // Both replicas let some through: the limit held between them, not inside one of them.
    const answeredBy = [0, 1].map(
      (replica) => responses.filter((r, i) => i % 2 === replica && r.status === 200).length,
    );
    expect(
      answeredBy.every((n) => n > 0),
      `answered per replica: ${answeredBy.join(', ')}`,
    ).toBe(true);

    const audit = await auditedRetrievals(credential);
    expect(audit.total).toBe(attempts);
    expect(audit.count('allow')).toBe(limit);
    expect(audit.count('deny', code)).toBe(attempts - limit);
  };

  it(`lets exactly ${limit} requests through a rate limit shared by both replicas`, async () => {
    const [a] = replicas as [TestVault, TestVault];
    await createPolicy(a, `name: per-minute\nrules:\n  - rate_limit: { requests: ${limit}, per: 1m }\n`);
    await attach(a, 'per-minute', 'credential', 'notion');
    await expectExactly('notion', await burst('notion'), 'rate_limited');
  });

  it(`lets exactly ${limit} uses through a usage cap shared by both replicas`, async () => {
    const [, b] = replicas as [TestVault, TestVault];
    // Made on the other replica this time: each holds the other's change on its next request.
    await createPolicy(b, `name: budget\nrules:\n  - usage_cap: { uses: ${limit}, per: total }\n`);
    await attach(b, 'budget', 'credential', 'github');
    await expectExactly('github', await burst('github'), 'usage_cap_exhausted');
    // Spent for good (per: total): a later request on either replica is still refused.
    for (const vault of replicas) {
      const late = await retrieveFrom(vault, agent, 'github');
      expect([late.status, late.body.error?.code]).toEqual([429, 'usage_cap_exhausted']);
    }
  });
});
