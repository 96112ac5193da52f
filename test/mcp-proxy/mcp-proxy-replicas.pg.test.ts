import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { canary, ok } from './mcp-proxy-fixtures.js';
import { type SdkUpstream, startSdkUpstream } from './sdk-upstream.js';

/**
 * Two vault replicas on one PostgreSQL database behind a "load balancer" that alternates every HTTP
 * request between them: one MCP session (the `initialize` / `Mcp-Session-Id` revisions) through an
 * MCP proxy works throughout. The session is in the store; the replica that did not start it opens
 * its own upstream connection on first use, and the agent never initializes again.
 */
describePostgres('an MCP proxy session across two replicas', () => {
  let database: TestDatabase;
  let upstream: SdkUpstream;
  const dirs: TempDataDir[] = [];
  const replicas: TestVault[] = [];
  const addresses: URL[] = [];
  let key: string;

  beforeAll(async () => {
    upstream = await startSdkUpstream();
    database = await createTestDatabase();
    const masterKey = randomBytes(32).toString('base64');
    for (let i = 0; i < 2; i += 1) {
      const dir = await createTempDataDir();
      dirs.push(dir);
      if (i > 0) writeFileSync(join(dir.dir, 'admin-token'), replicas[0]!.rootToken, { mode: 0o600 });
      const vault = await startTestVault({
        dataDir: dir.dir,
        databaseUrl: database.url,
        settings: { masterKey, outboundAllow: '127.0.0.1' },
      });
      replicas.push(vault);
      addresses.push(new URL(await vault.vault.listen()));
    }
    const t = replicas[0]!;
    await ok(t, 'POST', '/v1/admin/credentials', {
      name: 'upstream-token',
      type: 'api_key',
      secret: { api_key: canary },
    });
    await ok(t, 'POST', '/v1/admin/agents', { name: 'balanced-agent' });
    await ok(t, 'POST', '/v1/admin/grants', {
      agent: 'balanced-agent',
      credential: 'upstream-token',
      until_revoked: true,
    });
    await ok(t, 'POST', '/v1/admin/mcp-proxies', {
      name: 'shared',
      url: upstream.url,
      credential: 'upstream-token',
      injections: [{ in: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
    });
    key = (await ok(t, 'POST', '/v1/admin/mcp-proxies/shared/keys', { agent: 'balanced-agent' }))
      .key as string;
  }, 60_000);

  afterAll(async () => {
    for (const vault of replicas) await vault.stop();
    for (const dir of dirs) await dir.cleanup();
    await database?.drop();
    await upstream?.stop();
  });

  /** A "load balancer": each HTTP request to the next replica in turn. */
  const balancer = () => {
    const served: string[] = [];
    const methods: string[] = [];
    let next = 0;
    const alternating = (input: string | URL | Request, init?: RequestInit) => {
      const target = addresses[next++ % addresses.length]!;
      const url = new URL(input instanceof Request ? input.url : input);
      url.host = target.host;
      served.push(url.host);
      if (typeof init?.body === 'string')
        methods.push(String((JSON.parse(init.body) as { method?: string }).method));
      return fetch(url, init);
    };
    return { served, methods, alternating };
  };

  it('continues one session on either replica, without a second agent initialize', async () => {
    const { served, methods, alternating } = balancer();
    const before = upstream.initializeCount();
    const client = new Client({ name: 'balanced', version: '1' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL('/mcp/shared', addresses[0]), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
      fetch: alternating,
    });
    await client.connect(transport);
    const sessionId = transport.sessionId;
    try {
      expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['whoami']);
      for (let i = 0; i < 4; i += 1) {
        const answer = await client.callTool({ name: 'whoami', arguments: {} });
        expect(JSON.stringify(answer)).toContain('authorization=[REDACTED]');
      }
      // Both replicas served the one session; the agent initialized once, and each replica opened
      // its own upstream connection once (not one per call).
      expect(new Set(served).size).toBe(2);
      expect(transport.sessionId).toBe(sessionId);
      expect(methods.filter((method) => method === 'initialize')).toHaveLength(1);
      expect(upstream.initializeCount() - before).toBe(2);
    } finally {
      await transport.terminateSession();
      await client.close();
    }
    // Ended through one replica, the session is refused by the other on its very next request (each
    // request reads the stored session).
    const after = await Promise.all(
      addresses.map((address) =>
        fetch(new URL('/mcp/shared', address), {
          method: 'POST',
          headers: {
            authorization: `Bearer ${key}`,
            'mcp-session-id': String(sessionId),
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
        }),
      ),
    );
    expect(after.map((answer) => answer.status)).toEqual([404, 404]);
  }, 60_000);

  it('survives an upstream restart on both replicas: each connects again once and the client is told', async () => {
    const { served, alternating } = balancer();
    const client = new Client({ name: 'balanced', version: '1' }, { capabilities: {} });
    let listChanged = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => void (listChanged += 1));
    const transport = new StreamableHTTPClientTransport(new URL('/mcp/shared', addresses[0]), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
      fetch: alternating,
    });
    await client.connect(transport);
    try {
      await client.listTools();
      for (let i = 0; i < 2; i += 1)
        expect(JSON.stringify(await client.callTool({ name: 'whoami', arguments: {} }))).toContain(
          'authorization=[REDACTED]',
        );
      const port = Number(new URL(upstream.url).port);
      await upstream.stop();
      upstream = await startSdkUpstream({ port });
      // Each replica meets the restarted upstream's 404 on its next request, connects again once,
      // and sends the call again: no call fails.
      for (let i = 0; i < 4; i += 1)
        expect(JSON.stringify(await client.callTool({ name: 'whoami', arguments: {} }))).toContain(
          'authorization=[REDACTED]',
        );
      expect(new Set(served).size).toBe(2);
      expect(upstream.initializeCount()).toBe(2);
      expect(listChanged).toBe(2);
    } finally {
      await transport.terminateSession();
      await client.close();
    }
  }, 60_000);
});
