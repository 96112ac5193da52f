import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cleanEnv, type ServerProcess, startServer } from '../helpers/cli.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

/**
 * Issue 15: "two vault processes on one PostgreSQL never let more than N requests through a rate limit
 * or usage cap between them under concurrent load (count what the agents received)". Two `tokenvault
 * serve` processes on one database; many concurrent retrievals alternate between them over HTTP. The
 * counters live in the shared database (`src/policy/store-counters.ts`), so exactly N answers carry
 * the secret, whatever the interleaving, and the audit trail both processes wrote says the same.
 */
describePostgres('rate limits and usage caps across two vault processes', () => {
  const limit = 25;
  const attempts = 80;
  let database: TestDatabase;
  const dirs: TempDataDir[] = [];
  const servers: ServerProcess[] = [];
  let rootToken: string;
  let agent: { id: string; apiKey: string };

  const admin = async (server: ServerProcess, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${rootToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    expect(response.status, text).toBeLessThan(300);
    return JSON.parse(text) as Record<string, unknown>;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    const env = cleanEnv({
      TOKENVAULT_MASTER_KEY: randomBytes(32).toString('base64'),
      TOKENVAULT_LOG_LEVEL: 'warn',
    });
    for (let i = 0; i < 2; i += 1) {
      const dir = await createTempDataDir();
      dirs.push(dir);
      servers.push(
        await startServer(['--data-dir', dir.dir, '--database-url', database.url], { cwd: dir.dir, env }),
      );
    }
    rootToken = readFileSync(join(dirs[0]!.dir, 'admin-token'), 'utf8').trim();
    const [a] = servers as [ServerProcess, ServerProcess];
    const created = await admin(a, 'POST', '/v1/admin/agents', { name: 'agent-b' });
    agent = { id: created.id as string, apiKey: created.api_key as string };
    for (const name of ['notion', 'github']) {
      await admin(a, 'POST', '/v1/admin/credentials', {
        name,
        type: 'api_key',
        secret: { api_key: `${name}-secret` },
      });
      await admin(a, 'POST', '/v1/admin/grants', {
        agent: 'agent-b',
        credential: name,
        until_revoked: true,
        reveal: true,
      });
    }
  }, 60_000);

  afterAll(async () => {
    for (const server of servers) await server.stop();
    for (const dir of dirs) await dir.cleanup();
    await database?.drop();
  });

  const retrieveFrom = async (server: ServerProcess, credential: string) => {
    const response = await fetch(`${server.url}/v1/agents/agent-b/credentials/${credential}`, {
      headers: { authorization: `Bearer ${agent.apiKey}` },
    });
    const body = (await response.json()) as { access_token?: string; error?: { code: string } };
    return { status: response.status, body, retryAfter: response.headers.get('retry-after') };
  };

  const createPolicy = (server: ServerProcess, document: string) =>
    admin(server, 'POST', '/v1/admin/policies', { document });
  const attach = (server: ServerProcess, name: string, kind: string, target: string) =>
    admin(server, 'POST', `/v1/admin/policies/${name}/attach`, { kind, target });

  /** `attempts` retrievals all in flight at once, alternating between the processes. */
  const burst = (credential: string) =>
    Promise.all(Array.from({ length: attempts }, (_, i) => retrieveFrom(servers[i % 2]!, credential)));

  /** What the audit trail (written by both processes into the one database) says about a credential. */
  const auditedRetrievals = async (credentialName: string) => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ decision: string; reason: string | null }>(
        `SELECT decision, reason FROM audit_events
          WHERE action = 'credential.retrieve' AND actor_id = $1 AND target_id = $2`,
        [agent.id, credentialName],
      );
      const count = (decision: string, reason?: string) =>
        rows.filter((row) => row.decision === decision && (reason === undefined || row.reason === reason))
          .length;
      return { total: rows.length, count };
    } finally {
      await client.end();
    }
  };

  /**
   * Warms both processes (authentication, access cache) so both take part in the burst; these two
   * retrievals come before the policy is attached, so nothing counts them. Returns the audit so far.
   */
  const warmUp = async (credential: string) => {
    for (const server of servers) expect((await retrieveFrom(server, credential)).status).toBe(200);
    return auditedRetrievals(credential);
  };

  const expectExactly = async (
    credential: string,
    code: 'rate_limited' | 'usage_cap_exhausted',
    before: Awaited<ReturnType<typeof auditedRetrievals>>,
  ) => {
    const responses = await burst(credential);
    const answered = responses.filter((r) => r.status === 200);
    const refused = responses.filter((r) => r.status === 429);
    // Counted from what the agents received: the secret exactly `limit` times, a refusal for the rest.
    expect(answered).toHaveLength(limit);
    expect(refused).toHaveLength(attempts - limit);
    for (const response of answered) {
      expect(response.body.access_token).toBe(`${credential}-secret`);
    }
    for (const response of refused) {
      expect(response.body.error?.code).toBe(code);
      // A rate limit says when its window resets; a lifetime cap never does, so it names no time.
      if (code === 'rate_limited') expect(Number(response.retryAfter)).toBeGreaterThan(0);
      else expect(response.retryAfter).toBeNull();
    }
    // Each process was asked `attempts / 2` (40) times, more than the limit: counters kept per process
    // would have let 2 × 25 through. Exactly 25 means the processes counted together.
    const audit = await auditedRetrievals(credential);
    expect(audit.total - before.total).toBe(attempts);
    expect(audit.count('allow') - before.count('allow')).toBe(limit);
    expect(audit.count('deny', code)).toBe(attempts - limit);
  };

  it(`lets exactly ${limit} requests through a rate limit shared by two vault processes`, async () => {
    const [a] = servers as [ServerProcess, ServerProcess];
    // An hour's window (aligned to the epoch): a burst that straddled its end could rightly pass twice.
    const intoHour = Date.now() % 3_600_000;
    if (intoHour > 3_600_000 - 20_000) await sleep(3_600_000 - intoHour + 1000);
    await createPolicy(a, `name: per-hour\nrules:\n  - rate_limit: { requests: ${limit}, per: 1h }\n`);
    const before = await warmUp('notion');
    await attach(a, 'per-hour', 'credential', 'notion');
    await expectExactly('notion', 'rate_limited', before);
  }, 60_000);

  it(`lets exactly ${limit} uses through a usage cap shared by two vault processes`, async () => {
    const [, b] = servers as [ServerProcess, ServerProcess];
    // Made on the other process this time: each holds the other's change on its next request.
    await createPolicy(b, `name: budget\nrules:\n  - usage_cap: { uses: ${limit}, per: total }\n`);
    const before = await warmUp('github');
    await attach(b, 'budget', 'credential', 'github');
    await expectExactly('github', 'usage_cap_exhausted', before);
    // Spent for good (per: total): a later request on either process is still refused.
    for (const server of servers) {
      const late = await retrieveFrom(server, 'github');
      expect([late.status, late.body.error?.code]).toEqual([429, 'usage_cap_exhausted']);
    }
  }, 30_000);
});
