import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { OAuthMetadata } from '@modelcontextprotocol/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAgainst } from '../helpers/cli-in-process.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { type ProtectedMcpServer, startProtectedMcpServer } from '../oauth/mcp-protected-server.js';
import { freePort } from '../oauth/oauth-app-fixture.js';
import { auditEvents, ok } from './mcp-proxy-fixtures.js';

/**
 * Issue 16 item 5: an upstream 401 on an OAuth credential triggers one refresh and one retry. The
 * upstream is an MCP server written with the SDK and protected by a real OpenID Provider; the vault
 * holds alice's token as a connected OAuth credential (discovered, registered and connected as
 * `oauth app discover` and `connect` do). When the upstream stops accepting the current access token
 * (revoked early: the provider still calls it unexpired), the proxy refreshes once — counted at the
 * provider — and the retried request succeeds; refused again after the refresh, the agent gets
 * `mcp_upstream_unauthorized`, audited, and nothing loops.
 */
describe('MCP proxy: an upstream 401 on an OAuth credential', () => {
  let op: TestOAuthServer;
  let mcp: ProtectedMcpServer;
  let t: TestVault;
  let key: string;
  let addr: string;
  /** Tokens the upstream has seen, and those it now refuses (as if revoked). */
  const seen = new Set<string>();
  const refused = new Set<string>();
  let refuseAll = false;

  beforeAll(async () => {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    // Tokens live long: nothing is refreshed because it expires, only because the upstream refuses it.
    op = await startOAuthServer({ accessTokenTtl: 600, redirectUris: [`${publicUrl}/v1/oauth/callback`] });
    const oidcMetadata = (await (
      await fetch(`${op.issuer}/.well-known/openid-configuration`)
    ).json()) as OAuthMetadata;
    mcp = await startProtectedMcpServer({
      oauthMetadata: oidcMetadata,
      introspect: async (token) => {
        if (refuseAll || refused.has(token)) return { active: false };
        seen.add(token);
        return op.introspect(token);
      },
    });
    t = await startTestVault({
      settings: { port: String(port), publicUrl, outboundAllow: '127.0.0.1', oauthAllowHttp: 'true' },
    });
    addr = await t.vault.listen();
    const cli = cliAgainst(addr, t.rootToken);
    await ok(t, 'POST', '/v1/admin/agents', { name: 'helper' });
    const discovered = await cli(['oauth', 'app', 'discover', '--mcp-url', mcp.url, '--name', 'remote']);
    expect(discovered.code, discovered.stderr).toBe(0);
    const made = await cli(['connect', 'remote', '--agent', 'helper', '--user', 'alice', '--json']);
    expect(made.code, made.stderr).toBe(0);
    const link = JSON.parse(made.stdout) as { url: string };
    const browser = op.browser({ account: 'alice' });
    expect((await browser.get(link.url)).status).toBe(200);
    expect((await browser.post(link.url, {})).status).toBe(200);

    await ok(t, 'POST', '/v1/admin/mcp-proxies', {
      name: 'remote-mcp',
      url: mcp.url,
      credential: 'remote',
      per_user: true,
      injections: [{ in: 'header', name: 'Authorization', template: 'Bearer {{access_token}}' }],
    });
    key = (await ok(t, 'POST', '/v1/admin/mcp-proxies/remote-mcp/keys', { agent: 'helper', user: 'alice' }))
      .key as string;
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
    await mcp?.stop();
    await op?.stop();
  });

  const connect = async () => {
    const client = new Client({ name: 'agent', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${addr}/mcp/remote-mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${key}` } },
    });
    await client.connect(transport);
    return client;
  };

  /** The upstream refuses every token it has accepted so far, as if the provider had revoked them. */
  const revokeSeen = () => {
    for (const token of seen) refused.add(token);
    seen.clear();
  };

  it('refreshes once and retries the call when the upstream refuses the current token', async () => {
    const client = await connect();
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['whoami']);
    expect((await client.callTool({ name: 'whoami', arguments: {} })).content).toEqual([
      { type: 'text', text: 'sub=alice' },
    ]);
    revokeSeen();
    const refreshes = op.tokenSuccesses('refresh_token');
    expect((await client.callTool({ name: 'whoami', arguments: {} })).content).toEqual([
      { type: 'text', text: 'sub=alice' },
    ]);
    expect(op.tokenSuccesses('refresh_token')).toBe(refreshes + 1);
    const [call] = (await auditEvents(t, 'mcp_proxy.call')).filter((e) => e.details.retried_after_401);
    expect(call).toMatchObject({ decision: 'allow', details: { outcome: 'ok', end_user: 'alice' } });

    // Any other request (here tools/list) renews through a decision of its own, one event.
    revokeSeen();
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['whoami']);
    expect(op.tokenSuccesses('refresh_token')).toBe(refreshes + 2);
    for (const filter of ['agent=helper', 'credential=remote']) {
      const found = (
        (await t.request('GET', `/v1/admin/audit/events?${filter}&action=mcp_proxy.reauthorize`)).body as {
          items: { decision: string; details: Record<string, unknown> }[];
        }
      ).items;
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({ decision: 'allow', details: { retried_after_401: true } });
    }
    await client.close();
  }, 30_000);

  it('answers a second 401 after the refresh with its own code, audited, without looping', async () => {
    const client = await connect();
    await client.listTools();
    refuseAll = true;
    const refreshes = op.tokenSuccesses('refresh_token');
    const refusal = await client.callTool({ name: 'whoami', arguments: {} }).catch((error: unknown) => error);
    expect(String(refusal)).toMatch(/refused the credential the vault injected/);
    expect((refusal as { data?: { code?: string } }).data?.code).toBe('mcp_upstream_unauthorized');
    // One refresh, one retry, and no more.
    expect(op.tokenSuccesses('refresh_token')).toBe(refreshes + 1);
    const [denied] = (await auditEvents(t, 'mcp_proxy.call')).filter((e) => e.decision === 'deny');
    expect(denied).toMatchObject({
      reason: 'mcp_upstream_unauthorized',
      details: { retried_after_401: true },
    });
    refuseAll = false;
    await client.close();
  }, 30_000);
});
