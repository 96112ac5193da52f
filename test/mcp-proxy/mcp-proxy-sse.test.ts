import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { everythingContract, type EverythingProxy, itNeverLeaksTheSecret } from './everything-contract.js';
import { auditEvents, ok, setUpStdioProxy, stopCuttingLeftovers } from './mcp-proxy-fixtures.js';

/**
 * The deprecated HTTP+SSE transport toward agents (MCP 2024-11-05): the v1 SDK's `SSEClientTransport`
 * → `GET /mcp/{proxy}/sse` + `POST /mcp/{proxy}/messages` → server-everything as a stdio upstream.
 * The session behind it is the Streamable HTTP path's, so the key, the Origin check, the decision,
 * the audit, the tool lists and the redaction apply to it alike.
 */
describe('MCP proxy over the HTTP+SSE transport', () => {
  let t: TestVault;
  let addr: string;
  let key: string;
  let ctx: EverythingProxy;

  beforeAll(async () => {
    t = await startTestVault();
    addr = await t.vault.listen();
    ({ key } = await setUpStdioProxy(t, 'legacy'));
    ctx = {
      t,
      addr,
      proxy: 'legacy',
      key,
      agent: 'legacy-agent',
      credential: 'legacy-token',
      seen: [],
      agentTransport: 'sse',
    };
  }, 30_000);

  afterAll(async () => {
    await stopCuttingLeftovers(t);
  });

  const connect = async (token = key) => {
    // As server-everything lists its sampling and elicitation tools only to clients declaring them,
    // the first listing (which pins the definitions) is made by such a client.
    const client = new Client(
      { name: 'sse-agent', version: '1.0.0' },
      { capabilities: { sampling: {}, elicitation: {} } },
    );
    const transport = new SSEClientTransport(new URL(`${addr}/mcp/legacy/sse`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    });
    await client.connect(transport);
    return { client, transport };
  };

  it('lists and calls tools, denied tools absent, the injected variable redacted', async () => {
    const { client, transport } = await connect();
    const { tools } = await client.listTools();
    const names = tools.map((tool) => tool.name);
    expect(names).toContain('echo');
    expect(names).not.toContain('get-tiny-image');
    const echoed = await client.callTool({ name: 'echo', arguments: { message: 'hello over SSE' } });
    expect(JSON.stringify(echoed.content)).toContain('hello over SSE');
    const env = await client.callTool({ name: 'get-env', arguments: {} });
    const text = JSON.stringify(env);
    expect(text).toContain('UPSTREAM_API_TOKEN');
    expect(text).toContain('[REDACTED]');
    const refused = await client.callTool({ name: 'get-tiny-image', arguments: {} }).catch((e: unknown) => e);
    expect(String(refused)).toMatch(/tool lists/);
    ctx.seen.push(JSON.stringify([tools, echoed, env, String(refused)]));

    const calls = (await auditEvents(t, 'mcp_proxy.call')).filter((e) => e.details.proxy_name === 'legacy');
    expect(calls.map((e) => [e.details.tool, e.reason])).toEqual(
      expect.arrayContaining([
        ['echo', 'ok'],
        ['get-env', 'ok'],
        ['get-tiny-image', 'mcp_tool_denied'],
      ]),
    );
    expect(calls.find((e) => e.details.tool === 'get-env')?.details.redactions).toBeGreaterThan(0);
    // The session is the same kind as Streamable HTTP's: one connect decision, audited.
    const connects = (await auditEvents(t, 'mcp_proxy.connect')).filter(
      (e) => e.details.proxy_name === 'legacy',
    );
    expect(connects.length).toBeGreaterThan(0);

    // The client hangs up: the session, its upstream and its stdio child end with the stream.
    const before = t.vault.services.mcpEndpoint.sessionCount();
    await transport.close();
    await expect.poll(() => t.vault.services.mcpEndpoint.sessionCount(), { timeout: 5_000 }).toBe(before - 1);
    await expect
      .poll(
        async () =>
          (await auditEvents(t, 'mcp_proxy.session.end')).filter((e) => e.details.proxy_name === 'legacy')
            .length,
        { timeout: 5_000 },
      )
      .toBe(1);
  }, 30_000);

  it('refuses a stream opened with a bad key, audited, and one without a key', async () => {
    const refused = await connect('tv_proxy_not-a-real-key').catch((e: unknown) => e);
    expect(String(refused)).toMatch(/401/);
    const events = await auditEvents(t, 'mcp_proxy.authenticate');
    expect(events.some((e) => e.reason === 'proxy_key_invalid')).toBe(true);

    const keyless = await fetch(`${addr}/mcp/legacy/sse`, { headers: { accept: 'text/event-stream' } });
    expect(keyless.status).toBe(401);
    expect(((await keyless.json()) as { error: { code: string } }).error.code).toBe('proxy_key_required');

    const foreign = await fetch(`${addr}/mcp/legacy/sse`, {
      headers: { authorization: `Bearer ${key}`, origin: 'http://evil.example' },
    });
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe('origin_refused');
  }, 30_000);

  it('honours a session id only with the key that opened it, on every POST', async () => {
    // A stream opened by hand, to read its endpoint event.
    const controller = new AbortController();
    const stream = await fetch(`${addr}/mcp/legacy/sse`, {
      headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' },
      signal: controller.signal,
    });
    expect(stream.headers.get('content-type')).toBe('text/event-stream');
    const reader = stream.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    const endpoint = /event: endpoint\ndata: (\S+)/.exec(first)?.[1];
    expect(endpoint).toMatch(/^\/mcp\/legacy\/messages\?sessionId=[\w-]+$/);

    const other = await ok(t, 'POST', '/v1/admin/mcp-proxies/legacy/keys', { agent: 'legacy-agent' });
    const post = (token: string | undefined, body: unknown = { jsonrpc: '2.0', id: 1, method: 'ping' }) =>
      fetch(`${addr}${endpoint}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      });
    const keyless = await post(undefined);
    expect(keyless.status).toBe(401);
    const otherKey = await post(other.key as string);
    expect(otherKey.status).toBe(404);
    expect(((await otherKey.json()) as { error: { code: string } }).error.code).toBe('mcp_session_not_found');
    const notMessage = await post(key, { hello: 'world' });
    expect(notMessage.status).toBe(400);
    // The vault's body limit holds here as on every route.
    const huge = await post(key, {
      jsonrpc: '2.0',
      id: 2,
      method: 'ping',
      params: { pad: 'x'.repeat(1 << 20) },
    });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
    const unknown = await fetch(`${addr}/mcp/legacy/messages?sessionId=nope`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
    });
    expect(unknown.status).toBe(404);
    // The right key: accepted, and the answer (a refusal, as nothing was initialized) comes down the stream.
    const accepted = await post(key);
    expect(accepted.status).toBe(202);
    const answer = new TextDecoder().decode((await reader.read()).value);
    expect(answer).toMatch(/event: message\ndata: .*"id":1.*mcp_session_not_found/);
    controller.abort();
  }, 30_000);

  // Every case the other transports pass, with the v1 and v2 SDKs' SSE client transports.
  everythingContract(() => ctx);

  itNeverLeaksTheSecret(() => ctx);
});
