import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import {
  connectV1,
  everythingContract,
  type EverythingProxy,
  itNeverLeaksTheSecret,
} from './everything-contract.js';
import { auditEvents, ok, setUpStdioProxy } from './mcp-proxy-fixtures.js';

const exitingUpstream = fileURLToPath(new URL('./exiting-upstream.mjs', import.meta.url));

/**
 * Issue 16 items 2, 3, 5 and 6 end to end with real parts: the official SDK clients (v1 and v2) →
 * the vault's `/mcp/{proxy}` → server-everything run as a stdio child with the credential injected
 * in its environment (the cases every upstream kind passes are in everything-contract.ts).
 */
describe('MCP proxy to a stdio upstream (server-everything)', () => {
  let t: TestVault;
  let ctx: EverythingProxy;
  let key: string;
  let grantId: string;

  beforeAll(async () => {
    t = await startTestVault();
    const addr = await t.vault.listen();
    const setup = await setUpStdioProxy(t);
    key = setup.key;
    grantId = setup.grant.id as string;
    ctx = {
      t,
      addr,
      proxy: 'everything',
      key,
      agent: 'everything-agent',
      credential: 'everything-token',
      seen: [],
    };
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
  });

  everythingContract(() => ctx);

  it('gives the child a minimal environment: nothing of the vault’s own', async () => {
    const { client } = await connectV1(ctx);
    const env = JSON.stringify(await client.callTool({ name: 'get-env', arguments: {} }));
    ctx.seen.push(env);
    expect(env).toContain('UPSTREAM_API_TOKEN');
    expect(env).not.toContain('TOKENVAULT_');
    await client.close();
  }, 30_000);

  it('answers a call whose stdio upstream exits mid-session with its own code, audited, and starts it again', async () => {
    await ok(t, 'POST', '/v1/admin/mcp-proxies', {
      name: 'exiting',
      command: process.execPath,
      args: [exitingUpstream],
      credential: 'everything-token',
      injections: [{ in: 'env', name: 'UPSTREAM_API_TOKEN', template: '{{api_key}}' }],
    });
    const created = await ok(t, 'POST', '/v1/admin/mcp-proxies/exiting/keys', { agent: 'everything-agent' });
    const client = new ClientV1({ name: 'v1-agent', version: '1.0.0' });
    let listChanged = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      listChanged += 1;
    });
    await client.connect(
      new TransportV1(new URL(`${ctx.addr}/mcp/exiting`), {
        requestInit: { headers: { Authorization: `Bearer ${created.key as string}` } },
      }),
    );
    await client.listTools();
    const refused = await client.callTool({ name: 'exit', arguments: {} }).catch((e: unknown) => e);
    expect(String(refused)).toMatch(/exited/);
    // The call in flight is lost; the session is not: the next request starts the command again,
    // and the agent is told to list the tools again.
    const again = await client.listTools();
    expect(again.tools.map((tool) => tool.name)).toEqual(['exit']);
    expect(listChanged).toBe(1);
    const calls = (await auditEvents(t, 'mcp_proxy.call')).filter((e) => e.details.proxy_name === 'exiting');
    expect(calls.map((e) => e.reason)).toEqual(['mcp_upstream_exited']);
    const reconnects = (await auditEvents(t, 'mcp_proxy.reconnect')).filter(
      (e) => e.details.proxy_name === 'exiting',
    );
    expect(reconnects.map((e) => [e.decision, e.details.after])).toEqual([['allow', 'mcp_upstream_exited']]);
    const ends = (await auditEvents(t, 'mcp_proxy.session.end')).filter(
      (e) => e.details.proxy_name === 'exiting',
    );
    expect(ends).toEqual([]);
    await client.close();
  }, 30_000);

  it('refuses the next call once the grant is revoked, with its own code, audited', async () => {
    const { client } = await connectV1(ctx);
    await client.callTool({ name: 'echo', arguments: { message: 'before' } });
    await ok(t, 'DELETE', `/v1/admin/grants/${grantId}`);
    const refused = await client
      .callTool({ name: 'echo', arguments: { message: 'after' } })
      .catch((e: unknown) => e);
    expect(String(refused)).toMatch(/revoked|grant/i);
    const denied = (await auditEvents(t, 'mcp_proxy.call')).filter((e) => e.decision === 'deny');
    expect(denied.map((e) => e.reason)).toContain('grant_revoked');
    await client.close().catch(() => undefined);
  }, 30_000);

  itNeverLeaksTheSecret(() => ctx);
});
