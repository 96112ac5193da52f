import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestVault, TestVaultOptions } from '../helpers/vault.js';
import { waitForJob } from '../helpers/jobs.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { startTestVault } from '../helpers/vault.js';

export const canary = 'CANARY-7f3a9c-do-not-leak';

/** Every form in which a leaked canary could show up. */
const forms = (value: string) => [
  value,
  Buffer.from(value).toString('base64'),
  Buffer.from(value).toString('base64url'),
  Buffer.from(value).toString('hex'),
];

const expectNoCanary = (where: string, haystack: string | Buffer) => {
  const text = Buffer.isBuffer(haystack) ? haystack.toString('latin1') : haystack;
  for (const form of forms(canary)) {
    expect(text.includes(form), `${where} contains the canary (${form.slice(0, 12)}…)`).toBe(false);
  }
};

/**
 * Invariant 1: a secret stored in the vault shows up nowhere by accident: not in the database, the
 * logs, a response body, an error, or the metrics. The same run proves the canary really was stored
 * (it decrypts), so a silent failure to store cannot pass for secrecy.
 */
export const canaryContract = (
  storeOptions: () => Promise<TestVaultOptions & { cleanup?: () => Promise<void> }>,
  dumpDatabase: (t: TestVault) => Promise<string | Buffer>,
) => {
  let t: TestVault;
  let op: TestOAuthServer;
  let cleanup: (() => Promise<void>) | undefined;
  const bodies: string[] = [];

  const call = async (...args: Parameters<TestVault['request']>) => {
    const response = await t.request(...args);
    bodies.push(JSON.stringify(response.headers), response.text);
    return response;
  };

  beforeAll(async () => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    // A local OAuth provider whose device codes carry the canary: a device code the vault holds
    // while it polls must be as invisible as any stored secret.
    op = await startOAuthServer({ deviceInterval: 1, deviceCodePrefix: canary });
    t = await startTestVault({
      ...options,
      settings: { ...options.settings, outboundAllow: '127.0.0.1', oauthAllowHttp: 'true' },
    });

    const secrets: [string, string, Record<string, string>][] = [
      ['k', 'api_key', { api_key: canary }],
      ['b', 'bearer', { token: `Bearer-ish ${canary}` }],
      ['u', 'basic', { username: 'bob', password: canary }],
      ['o', 'oauth2', { access_token: canary, refresh_token: `r-${canary}`, token_type: 'Bearer' }],
      ['c', 'custom', { client_id: 'id', client_secret: canary }],
    ];
    for (const [name, type, secret] of secrets) {
      expect((await call('POST', '/v1/admin/credentials', { body: { name, type, secret } })).status).toBe(
        201,
      );
    }
    await call('GET', '/v1/admin/credentials');
    await call('GET', '/v1/admin/credentials/k');
    await call('PATCH', '/v1/admin/credentials/k', { body: { secret: { api_key: `${canary}-v2` } } });
    await call('GET', '/v1/admin/credentials/k/versions');

    // Refusals that carry the canary in their input must not echo it.
    await call('POST', '/v1/admin/credentials', {
      body: { name: 'k', type: 'api_key', secret: { api_key: canary } },
    });
    await call('POST', '/v1/admin/credentials', {
      body: { name: 'x', type: 'basic', secret: { username: 'bob', password: 'p', extra: canary } },
    });
    await call('POST', '/v1/admin/credentials', {
      body: { name: 'x', type: 'nonsense', secret: { api_key: canary } },
    });
    await call('POST', '/v1/admin/credentials', {
      rawBody: `{"name":"x","type":"api_key","secret":{"api_key":"${canary}"`,
    });
    await call('POST', '/v1/admin/credentials', {
      body: { name: 'x', type: 'api_key', secret: { api_key: canary }, padding: 'p'.repeat(300_000) },
    });
    await call('POST', '/v1/admin/credentials', {
      body: { name: 'x', type: 'api_key', secret: { api_key: 42 } },
    });
    await call('GET', '/v1/admin/credentials', { token: `tv_admin_${canary}` });
    await call('GET', '/v1/admin/credentials', { token: canary });

    const rotated = await call('POST', '/v1/admin/keys/rotate');
    expect(rotated.status).toBe(202);
    await waitForJob(
      async () =>
        (await call('GET', '/v1/admin/keys/status')).body as { job: { finished_at: string | null } },
    );
    await call('POST', '/v1/admin/keys/verify');
    await deviceFlows(call, op);
    await call('GET', '/metrics', { token: null });
    await call('GET', '/readyz', { token: null });
  });

  afterAll(async () => {
    await t?.stop();
    await op?.stop();
    await cleanup?.();
  });

  it('really held the canary device codes (the provider was polled with them)', () => {
    expect(op.deviceCodes().length).toBe(2);
    for (const code of op.deviceCodes()) {
      expect(code.startsWith(canary)).toBe(true);
      expect(op.devicePolls().some((p) => p.deviceCode === code)).toBe(true);
    }
  });

  it('really stored the canary (it decrypts)', async () => {
    expect((await t.vault.services.credentials.readSecret('default', 'u')).secret.password).toBe(canary);
    expect(
      (await t.vault.services.credentials.readSecret('default', 'k', { version: 1 })).secret.api_key,
    ).toBe(canary);
  });

  it('is in no response body or header, error included', () => {
    expect(bodies.length).toBeGreaterThan(20);
    expectNoCanary('a response', bodies.join('\n'));
  });

  it('is in no log line, even at trace level', () => {
    expect(t.logs()).toContain('request completed');
    expectNoCanary('the logs', t.logs());
  });

  it('is nowhere in the database', async () => {
    expectNoCanary('the database', await dumpDatabase(t));
  });
};

/**
 * Two device flows whose device codes carry the canary: one an admin starts and the person approves
 * (the code is polled, then redeemed), one an agent starts through `authorization_required` and
 * nobody approves (the code stays sealed in the store while the vault polls it).
 */
const deviceFlows = async (
  call: (...args: Parameters<TestVault['request']>) => ReturnType<TestVault['request']>,
  op: TestOAuthServer,
) => {
  const app = await call('POST', '/v1/admin/oauth/apps', {
    body: {
      provider: 'oidc',
      name: 'corp',
      issuer: op.issuer,
      client_id: op.client.client_id,
      client_secret: op.client.client_secret,
      scopes: ['openid', 'offline_access'],
      agent_connect_flows: ['device'],
    },
  });
  expect(app.status, app.text).toBe(201);
  const agent = await call('POST', '/v1/admin/agents', { body: { name: 'canary-agent' } });
  const started = await call('POST', '/v1/admin/connect', {
    body: { app: 'corp', agent: 'canary-agent', user: 'ann', device: true },
  });
  expect(started.status, started.text).toBe(201);
  const asked = await call('GET', '/v1/agents/canary-agent/credentials/corp?user=bob', {
    token: (agent.body as { api_key: string }).api_key,
  });
  expect((asked.body as { error: { code: string } }).error.code).toBe('authorization_required');
  await op.browser({ account: 'ann' }).approveDevice((started.body as { user_code: string }).user_code);
  const id = (started.body as { id: string }).id;
  const until = Date.now() + 20_000;
  while (((await call('GET', `/v1/admin/connect/${id}`)).body as { status: string }).status !== 'completed') {
    if (Date.now() > until) throw new Error('the approved device flow did not complete');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
};

/** The SQLite files as bytes: the database, its WAL and its shared-memory index. */
export const sqliteFiles = (t: TestVault): Buffer =>
  Buffer.concat(
    readdirSync(t.dataDir)
      .filter((file) => file.startsWith('tokenvault.db'))
      .map((file) => readFileSync(join(t.dataDir, file))),
  );

/** Every row of every table of the public schema, as text. */
export const postgresRows = async (t: TestVault): Promise<string> => {
  const { db } = t.vault.store;
  const tables = await sql<{ table_name: string }>`
    select table_name from information_schema.tables where table_schema = 'public'`.execute(db);
  expect(tables.rows.length).toBeGreaterThanOrEqual(6);
  const dumps: string[] = [];
  for (const { table_name } of tables.rows) {
    const rows = await sql`select * from ${sql.table(table_name)}`.execute(db);
    dumps.push(JSON.stringify(rows.rows));
  }
  return dumps.join('\n');
};
