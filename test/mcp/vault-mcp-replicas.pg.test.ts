import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, grant, type TestAgent } from '../retrieval/retrieval-fixtures.js';

/**
 * Two vault replicas on one PostgreSQL database behind a "load balancer" that alternates every HTTP
 * request between them: an MCP client (v1 SDK, the 2025 `initialize` revisions) works throughout,
 * because `/mcp` keeps nothing in one process, and a grant revoked on one replica holds on the
 * other's next request.
 */
describePostgres('the vault’s MCP server across two replicas', () => {
  let database: TestDatabase;
  const dirs: TempDataDir[] = [];
  const replicas: TestVault[] = [];
  const addresses: URL[] = [];
  let agent: TestAgent;
  let grantId: string;

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
      addresses.push(new URL(await vault.vault.listen()));
    }
    agent = await addAgent(replicas[0]!, 'replicated-agent');
    const response = await replicas[0]!.request('POST', '/v1/admin/credentials', {
      body: { name: 'shared', type: 'bearer', secret: { token: 'replicated-secret-31337' } },
    });
    expect(response.status, response.text).toBe(201);
    grantId = (
      await grant(replicas[0]!, { agent: agent.name, credential: 'shared', ttl: '1h', reveal: true })
    ).id;
  });

  afterAll(async () => {
    for (const vault of replicas) await vault.stop();
    for (const dir of dirs) await dir.cleanup();
    await database?.drop();
  });

  it('serves one client across both, and holds a revocation made on the other', async () => {
    const served: string[] = [];
    let next = 0;
    const alternating = (input: string | URL | Request, init?: RequestInit) => {
      const target = addresses[next++ % addresses.length]!;
      const url = new URL(input instanceof Request ? input.url : input);
      url.host = target.host;
      served.push(url.host);
      return fetch(url, init);
    };
    const client = new Client({ name: 'balanced', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL('/mcp', addresses[0]), {
        requestInit: { headers: { authorization: `Bearer ${agent.apiKey}` } },
        fetch: alternating,
      }),
    );
    try {
      expect((await client.listTools()).tools.map((tool) => tool.name)).toContain('get_credential');
      for (let i = 0; i < 2; i += 1) {
        const answer = await client.callTool({ name: 'get_credential', arguments: { credential: 'shared' } });
        expect(answer.structuredContent).toMatchObject({ access_token: 'replicated-secret-31337' });
      }
      expect(new Set(served).size).toBe(2);

      const revoked = await replicas[0]!.request('DELETE', `/v1/admin/grants/${grantId}`);
      expect(revoked.status, revoked.text).toBeLessThan(300);
      for (let i = 0; i < 2; i += 1) {
        const refused = await client.callTool({
          name: 'get_credential',
          arguments: { credential: 'shared' },
        });
        expect(refused.isError).toBe(true);
        expect(refused.structuredContent).toMatchObject({ code: 'grant_revoked' });
      }
    } finally {
      await client.close();
    }
  });
});
