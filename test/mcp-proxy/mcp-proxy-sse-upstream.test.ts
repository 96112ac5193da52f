import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { canary, ok } from './mcp-proxy-fixtures.js';
import { type SseUpstream, startSseUpstream } from './sse-upstream.js';

/**
 * A proxy with `--transport sse` to an upstream that speaks only the deprecated HTTP+SSE transport:
 * the vault injects the Authorization header on the upstream stream's GET and on every POST, keeps
 * one upstream session per agent session, and forwards nothing of the agent's.
 */
describe('MCP proxy to an HTTP+SSE upstream', () => {
  let t: TestVault;
  let upstream: SseUpstream;
  let addr: string;
  let key: string;

  beforeAll(async () => {
    upstream = await startSseUpstream();
    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1' } });
    addr = await t.vault.listen();
    await ok(t, 'POST', '/v1/admin/credentials', {
      name: 'sse-token',
      type: 'api_key',
      secret: { api_key: canary },
    });
    await ok(t, 'POST', '/v1/admin/agents', { name: 'sse-agent' });
    await ok(t, 'POST', '/v1/admin/grants', {
      agent: 'sse-agent',
      credential: 'sse-token',
      until_revoked: true,
    });
    await ok(t, 'POST', '/v1/admin/mcp-proxies', {
      name: 'old-upstream',
      url: upstream.url,
      transport: 'sse',
      credential: 'sse-token',
      injections: [{ in: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
    });
    key = (await ok(t, 'POST', '/v1/admin/mcp-proxies/old-upstream/keys', { agent: 'sse-agent' }))
      .key as string;
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
    await upstream?.stop();
  });

  it('injects Authorization on the stream and every message, forwards nothing of the agent’s, one upstream session', async () => {
    const client = new Client({ name: 'agent', version: '1.0.0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(`${addr}/mcp/old-upstream`), {
      requestInit: { headers: { Authorization: `Bearer ${key}`, Cookie: 'agent=cookie-value' } },
    });
    await client.connect(transport);
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['whoami']);
    const answers: string[] = [];
    for (let i = 0; i < 3; i += 1)
      answers.push(JSON.stringify(await client.callTool({ name: 'whoami', arguments: {} })));
    expect(answers).toEqual(Array(3).fill(expect.stringContaining('authorization=[REDACTED]')));
    expect(answers.join('')).not.toContain(canary);
    expect(upstream.sessionCount()).toBe(1);
    expect(upstream.requests.map((r) => r.method)).toContain('GET');
    for (const { headers } of upstream.requests) {
      expect(headers.authorization).toBe(`Bearer ${canary}`);
      const all = JSON.stringify(headers);
      expect(all).not.toContain('tv_proxy_');
      expect(all).not.toContain('cookie-value');
    }
    await transport.terminateSession();
    await client.close();
  }, 30_000);
});
