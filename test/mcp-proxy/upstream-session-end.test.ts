import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { ok } from './mcp-proxy-fixtures.js';
import { type SdkUpstream, startSdkUpstream } from './sdk-upstream.js';

/**
 * When an agent's session ends, the vault ends its upstream session too: a Streamable HTTP server
 * keeps each session until it is told (`DELETE`), so an upstream behind the proxy would otherwise
 * hold every session agents ever opened (the bench's mcp-proxy section: 10,000 of 10,000).
 */
describe('MCP proxy: the upstream session ends with the agent’s', () => {
  let t: TestVault;
  let upstream: SdkUpstream;
  let addr: string;
  let key: string;

  beforeAll(async () => {
    upstream = await startSdkUpstream();
    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1' } });
    addr = await t.vault.listen();
    await ok(t, 'POST', '/v1/admin/credentials', {
      name: 'end-token',
      type: 'api_key',
      secret: { api_key: 'sk-end-test' },
    });
    await ok(t, 'POST', '/v1/admin/agents', { name: 'end-agent' });
    await ok(t, 'POST', '/v1/admin/grants', {
      agent: 'end-agent',
      credential: 'end-token',
      until_revoked: true,
    });
    await ok(t, 'POST', '/v1/admin/mcp-proxies', {
      name: 'end',
      url: upstream.url,
      credential: 'end-token',
      injections: [{ in: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
    });
    key = (await ok(t, 'POST', '/v1/admin/mcp-proxies/end/keys', { agent: 'end-agent' })).key as string;
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
    await upstream?.stop();
  });

  it('sends the upstream a DELETE when the agent ends its session', async () => {
    const client = new Client({ name: 'agent', version: '1.0.0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(`${addr}/mcp/end`), {
      requestInit: { headers: { Authorization: `Bearer ${key}` } },
    });
    await client.connect(transport);
    await client.listTools();
    await client.callTool({ name: 'whoami', arguments: {} });
    const before = upstream.closedCount();
    await transport.terminateSession();
    expect(upstream.closedCount() - before).toBe(1);
    await client.close();
  }, 30_000);
});
