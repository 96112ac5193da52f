import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { ok, setUpStdioProxy, stopCuttingLeftovers } from './mcp-proxy-fixtures.js';

/**
 * The HTTP+SSE transport with two replicas on one PostgreSQL database: its stream is one response
 * held by one replica, so a message posted to the other is refused with a code that tells operators
 * to route this legacy transport with sticky sessions — distinct from an unknown session.
 */
describePostgres('an HTTP+SSE session across two replicas', () => {
  let database: TestDatabase;
  const dirs: TempDataDir[] = [];
  const replicas: TestVault[] = [];
  const addresses: string[] = [];
  let key: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    const masterKey = randomBytes(32).toString('base64');
    for (let i = 0; i < 2; i += 1) {
      const dir = await createTempDataDir();
      dirs.push(dir);
      if (i > 0) writeFileSync(join(dir.dir, 'admin-token'), replicas[0]!.rootToken, { mode: 0o600 });
      const vault = await startTestVault({
        dataDir: dir.dir,
        databaseUrl: database.url,
        settings: { masterKey },
      });
      replicas.push(vault);
      addresses.push(await vault.vault.listen());
    }
    ({ key } = await setUpStdioProxy(replicas[0]!, 'sticky'));
  }, 60_000);

  afterAll(async () => {
    for (const vault of replicas) await stopCuttingLeftovers(vault);
    for (const dir of dirs) await dir.cleanup();
    await database?.drop();
  });

  const post = (address: string, endpoint: string, token = key) =>
    fetch(`${address}${endpoint}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });

  const code = async (answer: Response) => ((await answer.json()) as { error: { code: string } }).error.code;

  it('refuses a message posted to the replica that does not hold the stream, with its own code', async () => {
    const controller = new AbortController();
    const stream = await fetch(`${addresses[0]}/mcp/sticky/sse`, {
      headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' },
      signal: controller.signal,
    });
    const reader = stream.body!.getReader();
    const endpoint = /event: endpoint\ndata: (\S+)/.exec(
      new TextDecoder().decode((await reader.read()).value),
    )?.[1];
    expect(endpoint).toBeDefined();

    expect((await post(addresses[0]!, endpoint!)).status).toBe(202);
    const elsewhere = await post(addresses[1]!, endpoint!);
    expect(elsewhere.status).toBe(421);
    expect(await code(elsewhere)).toBe('mcp_sse_session_elsewhere');
    // Another key learns nothing about the session, on either replica.
    const other = await ok(replicas[0]!, 'POST', '/v1/admin/mcp-proxies/sticky/keys', {
      agent: 'sticky-agent',
    });
    const foreign = await post(addresses[1]!, endpoint!, other.key as string);
    expect(foreign.status).toBe(404);
    expect(await code(foreign)).toBe('mcp_session_not_found');

    // Once the stream is closed, the session is over everywhere.
    controller.abort();
    await expect
      .poll(async () => (await post(addresses[1]!, endpoint!)).status, { timeout: 5_000 })
      .toBe(404);
  }, 60_000);
});
