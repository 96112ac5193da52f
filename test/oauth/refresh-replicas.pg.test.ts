import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cleanEnv } from '../helpers/cli.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { connect, startCallbackServer } from './refresh-fixture.js';
import { type RefreshReplica as Replica, startRefreshReplica } from './refresh-replica.js';

/**
 * Issue 13: at most one refresh per credential in flight across processes. Two vault processes on one
 * PostgreSQL database, 25 concurrent retrievals of an expired token at each: the provider sees one
 * refresh, and all 50 answers carry the same new token. Only the database lease can do that (each
 * process's in-memory single-flight knows nothing of the other).
 */

describePostgres('refresh across two vault processes', () => {
  let database: TestDatabase;
  let op: TestOAuthServer;
  let callback: Awaited<ReturnType<typeof startCallbackServer>>;
  const dirs: TempDataDir[] = [];
  const replicas: Replica[] = [];
  let rootToken: string;

  const call = async (url: string, method: string, path: string, token: string, body?: unknown) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    callback = await startCallbackServer();
    op = await startOAuthServer({ accessTokenTtl: 600, redirectUris: [callback.url] });
    const masterKey = randomBytes(32).toString('base64');
    for (let i = 0; i < 2; i += 1) {
      const dir = await createTempDataDir();
      dirs.push(dir);
      replicas.push(
        await startRefreshReplica(
          cleanEnv({
            TOKENVAULT_MASTER_KEY: masterKey,
            TOKENVAULT_LOG_LEVEL: 'warn',
            TOKENVAULT_OUTBOUND_ALLOW: '127.0.0.1',
            VAULT_DATA_DIR: dir.dir,
            VAULT_DATABASE_URL: database.url,
            OAUTH_ISSUER: op.issuer,
            OAUTH_CLIENT_ID: op.client.client_id,
            OAUTH_CLIENT_SECRET: op.client.client_secret,
            // On demand only: the schedulers stay out of the way.
            REFRESH_POLL_MS: '3600000',
            REFRESH_ADOPT_MS: '3600000',
          }),
        ),
      );
      if (i === 0) rootToken = readFileSync(join(dirs[0]!.dir, 'admin-token'), 'utf8').trim();
    }
  }, 60_000);
  afterAll(async () => {
    for (const replica of replicas) await replica.stop();
    for (const dir of dirs) await dir.cleanup();
    await op?.stop();
    await callback?.stop();
    await database?.drop();
  });

  it('50 concurrent retrievals of an expired token on two processes: one refresh at the provider', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const created = await call(a.url, 'POST', '/v1/admin/credentials', rootToken, {
      name: 'calendar',
      type: 'oauth2',
      secret: await connect(op, callback.url),
    });
    expect(created.status).toBe(201);
    await call(a.url, 'POST', '/v1/admin/agents', rootToken, { name: 'agent-42' });
    const key = await call(a.url, 'POST', '/v1/admin/agents/agent-42/keys', rootToken, { name: 'k' });
    await call(a.url, 'POST', '/v1/admin/grants', rootToken, {
      agent: 'agent-42',
      credential: 'calendar',
      reveal: true,
      until_revoked: true,
    });
    // As the connect flow records it: version 1, and (for this test) already expired.
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client.query(
      `insert into oauth_refresh_state (credential_id, namespace, status, secret_version, access_expires_at,
         expiry_assumed, next_refresh_at, failures, fence, updated_at)
       values ($1, 'default', 'active', 1, $2, 0, null, 0, 0, $2)`,
      [created.body.id, new Date(Date.now() - 1000).toISOString()],
    );
    await client.end();

    const before = op.tokenRequests('refresh_token');
    const path = '/v1/agents/agent-42/credentials/calendar';
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        call(i % 2 ? a.url : b.url, 'GET', path, key.body.api_key as string),
      ),
    );
    expect(answers.map((x) => x.status)).toEqual(Array(50).fill(200));
    expect(op.tokenRequests('refresh_token') - before).toBe(1);
    const tokens = new Set(answers.map((x) => x.body.access_token as string));
    expect(tokens.size).toBe(1);
    expect((await op.introspect([...tokens][0]!)).active).toBe(true);
  }, 60_000);
});
