import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { auditEvents, canary, ok } from './mcp-proxy-fixtures.js';
import { type SdkUpstream, startSdkUpstream } from './sdk-upstream.js';

/**
 * The 2026-07-28 revision through `/mcp/{proxy}`: the official v2 client pinned to it (stateless
 * requests, `server/discover`, the `Mcp-Method` / `Mcp-Name` headers) reaches a 2025-era upstream
 * through the vault, with the decision point, the injection, the redaction and the audit as in the
 * older revisions; a header that disagrees with the body is refused before anything is decided on it.
 */
describe('MCP proxy, revision 2026-07-28', () => {
  let t: TestVault;
  let upstream: SdkUpstream;
  let addr: string;

  beforeAll(async () => {
    upstream = await startSdkUpstream();
    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1' } });
    addr = await t.vault.listen();
    await ok(t, 'POST', '/v1/admin/credentials', {
      name: 'upstream-token',
      type: 'api_key',
      secret: { api_key: canary },
    });
    await ok(t, 'POST', '/v1/admin/agents', { name: 'modern-agent' });
    await ok(t, 'POST', '/v1/admin/grants', {
      agent: 'modern-agent',
      credential: 'upstream-token',
      until_revoked: true,
    });
    for (const [name, denyTools] of [
      ['modern', []],
      ['guarded', ['whoami']],
    ] as const) {
      await ok(t, 'POST', '/v1/admin/mcp-proxies', {
        name,
        url: upstream.url,
        credential: 'upstream-token',
        injections: [{ in: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
        deny_tools: denyTools,
      });
    }
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
    await upstream?.stop();
  });

  const newKey = async (proxy: string) =>
    (await ok(t, 'POST', `/v1/admin/mcp-proxies/${proxy}/keys`, { agent: 'modern-agent' })).key as string;

  const modernClient = async (proxy: string, key: string) => {
    const client = new Client(
      { name: 'modern-agent', version: '1.0.0' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${addr}/mcp/${proxy}`), {
        requestInit: { headers: { Authorization: `Bearer ${key}` } },
      }),
    );
    return client;
  };

  /** One raw 2026-07-28 request, its headers chosen by the test. */
  const raw = (proxy: string, key: string, headers: Record<string, string>, body: Record<string, unknown>) =>
    fetch(`${addr}/mcp/${proxy}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        ...headers,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        ...body,
        params: {
          ...(body.params as object),
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
            'io.modelcontextprotocol/clientCapabilities': {},
          },
        },
      }),
    });

  it('serves a v2 client pinned to 2026-07-28: tools/list and tools/call, decided, injected, redacted, audited', async () => {
    const key = await newKey('modern');
    const before = upstream.initializeCount();
    const client = await modernClient('modern', key);
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['whoami']);
    const answers: string[] = [];
    for (let i = 0; i < 3; i += 1)
      answers.push(JSON.stringify(await client.callTool({ name: 'whoami', arguments: {} })));
    // The upstream got the injected header; the agent sees it redacted.
    expect(answers).toEqual(Array(3).fill(expect.stringContaining('authorization=[REDACTED]')));
    expect(answers.join('')).not.toContain(canary);
    for (const headers of upstream.requests) expect(JSON.stringify(headers)).not.toContain(key);
    // Stateless towards the agent, yet one upstream session (one `initialize`) for all the requests.
    expect(upstream.initializeCount() - before).toBe(1);
    const calls = (await auditEvents(t, 'mcp_proxy.call')).filter(
      (e) => e.details.proxy_name === 'modern' && e.decision === 'allow',
    );
    expect(calls).toHaveLength(3);
    expect(calls[0]).toMatchObject({
      details: { tool: 'whoami', outcome: 'ok', agent_name: 'modern-agent' },
    });
    await client.close();
  }, 30_000);

  it('applies the decision point: a revoked grant refuses the next call', async () => {
    await ok(t, 'POST', '/v1/admin/agents', { name: 'short-lived' });
    const grant = await ok(t, 'POST', '/v1/admin/grants', {
      agent: 'short-lived',
      credential: 'upstream-token',
      until_revoked: true,
    });
    const key = (await ok(t, 'POST', '/v1/admin/mcp-proxies/modern/keys', { agent: 'short-lived' }))
      .key as string;
    const client = await modernClient('modern', key);
    await client.listTools();
    await client.callTool({ name: 'whoami', arguments: {} });
    await ok(t, 'DELETE', `/v1/admin/grants/${String(grant.id)}`);
    const refused = await client.callTool({ name: 'whoami', arguments: {} }).catch((e: unknown) => e);
    expect(String(refused)).toMatch(/grant/i);
    const denied = (await auditEvents(t, 'mcp_proxy.call')).filter(
      (e) => e.details.agent_name === 'short-lived' && e.decision === 'deny',
    );
    expect(denied).toHaveLength(1);
    await client.close();
  }, 30_000);

  it('refuses a header that does not match the body, so a rule on the tool name cannot be bypassed', async () => {
    const key = await newKey('guarded');
    const seen = upstream.requests.length;
    // The body calls the denied tool while the header names another one.
    const mismatched = await raw(
      'guarded',
      key,
      { 'mcp-method': 'tools/call', 'mcp-name': 'harmless' },
      { method: 'tools/call', params: { name: 'whoami', arguments: {} } },
    );
    expect(mismatched.status).toBe(400);
    const refusal = (await mismatched.json()) as { error: { code: number; data: { code: string } } };
    expect(refusal.error.code).toBe(-32020);
    expect(refusal.error.data.code).toBe('mcp_header_mismatch');
    const otherMethod = await raw(
      'guarded',
      key,
      { 'mcp-method': 'tools/list' },
      { method: 'tools/call', params: { name: 'whoami', arguments: {} } },
    );
    expect(otherMethod.status).toBe(400);
    // Nothing went upstream for either, and both are audited with the vault's code.
    expect(upstream.requests.length).toBe(seen);
    const mismatches = (await auditEvents(t, 'mcp_proxy.call')).filter(
      (e) => e.reason === 'mcp_header_mismatch' && e.details.proxy_name === 'guarded',
    );
    expect(mismatches.map((e) => e.details.header_name)).toEqual(expect.arrayContaining(['harmless']));
    expect(mismatches).toHaveLength(2);

    // With honest headers the same call reaches the rule, which refuses it by the body's tool name.
    const honest = await raw(
      'guarded',
      key,
      { 'mcp-method': 'tools/call', 'mcp-name': 'whoami' },
      { method: 'tools/call', params: { name: 'whoami', arguments: {} } },
    );
    expect(honest.status).toBe(200);
    const denied = (await honest.json()) as { id: number; error: { data: { code: string } } };
    expect(denied.id).toBe(7);
    expect(denied.error.data.code).toBe('mcp_tool_denied');
  }, 30_000);
});
