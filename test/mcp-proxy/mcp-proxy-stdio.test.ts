import { Client as ClientV2 } from '@modelcontextprotocol/client';
import { StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { auditEvents, canary, ok, setUpStdioProxy } from './mcp-proxy-fixtures.js';

const exitingUpstream = fileURLToPath(new URL('./exiting-upstream.mjs', import.meta.url));

/**
 * Issue 16 items 2, 3, 5 and 6 end to end with real parts: the official SDK clients (v1 and v2) →
 * the vault's `/mcp/{proxy}` → server-everything run as a stdio child with the credential injected
 * in its environment.
 */
describe('MCP proxy to a stdio upstream (server-everything)', () => {
  let t: TestVault;
  let addr: string;
  let key: string;
  let grantId: string;
  const seen: string[] = [];

  beforeAll(async () => {
    t = await startTestVault();
    addr = await t.vault.listen();
    const setup = await setUpStdioProxy(t);
    key = setup.key;
    grantId = setup.grant.id as string;
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
  });

  const connectV1 = async (token = key) => {
    const client = new ClientV1(
      { name: 'v1-agent', version: '1.0.0' },
      { capabilities: { sampling: {}, elicitation: {} } },
    );
    const transport = new TransportV1(new URL(`${addr}/mcp/everything`), {
      requestInit: { headers: { Authorization: `Bearer ${token}`, Cookie: 'session=agent-cookie' } },
    });
    await client.connect(transport);
    return { client, transport };
  };

  it('lists and calls tools through the vault with the v1 client, denied tools absent', async () => {
    const { client } = await connectV1();
    const { tools } = await client.listTools();
    const names = tools.map((tool) => tool.name);
    expect(names).toContain('echo');
    expect(names).toContain('get-env');
    expect(names).not.toContain('get-tiny-image');
    const echoed = await client.callTool({ name: 'echo', arguments: { message: 'hello through the vault' } });
    seen.push(JSON.stringify(echoed));
    expect(JSON.stringify(echoed.content)).toContain('hello through the vault');
    await client.close();
  }, 30_000);

  it('injects the variable into the child, and the agent sees it redacted', async () => {
    const { client } = await connectV1();
    const env = await client.callTool({ name: 'get-env', arguments: {} });
    const text = JSON.stringify(env);
    seen.push(text);
    expect(text).toContain('UPSTREAM_API_TOKEN');
    expect(text).toContain('[REDACTED]');
    expect(text).not.toContain(canary);
    // Only the minimal environment and the injection: nothing of the vault's own environment.
    expect(text).not.toContain('TOKENVAULT_');
    const calls = await auditEvents(t, 'mcp_proxy.call');
    const call = calls.find((e) => e.details.tool === 'get-env');
    expect(call).toMatchObject({
      decision: 'allow',
      details: {
        agent_name: 'everything-agent',
        proxy_name: 'everything',
        credential_name: 'everything-token',
        outcome: 'ok',
      },
    });
    expect(call?.details.redactions).toBeGreaterThan(0);
    expect(call?.details.arguments_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof call?.details.latency_ms).toBe('number');
    await client.close();
  }, 30_000);

  it('refuses a denied tool on call with its own code, audited', async () => {
    const { client } = await connectV1();
    const refused = await client.callTool({ name: 'get-tiny-image', arguments: {} }).catch((e: unknown) => e);
    seen.push(JSON.stringify(refused));
    expect(String(refused)).toMatch(/tool lists/);
    const denied = (await auditEvents(t, 'mcp_proxy.call')).filter((e) => e.decision === 'deny');
    expect(denied.map((e) => e.reason)).toContain('mcp_tool_denied');
    await client.close();
  }, 30_000);

  it('reads resources, gets prompts and completes through the v2 client', async () => {
    const client = new ClientV2({ name: 'v2-agent', version: '2.0.0' }, { capabilities: {} });
    await client.connect(
      new TransportV2(new URL(`${addr}/mcp/everything`), {
        requestInit: { headers: { Authorization: `Bearer ${key}` } },
      }),
    );
    const { resources } = await client.listResources();
    expect(resources.length).toBeGreaterThan(0);
    const read = await client.readResource({ uri: resources[0]!.uri });
    expect(read.contents.length).toBeGreaterThan(0);
    const { prompts } = await client.listPrompts();
    expect(prompts.length).toBeGreaterThan(0);
    const simple = prompts.find((p) => (p.arguments ?? []).every((a) => !a.required)) ?? prompts[0]!;
    const prompt = await client.getPrompt({ name: simple.name, arguments: {} });
    expect(prompt.messages.length).toBeGreaterThan(0);
    const completed = await client.complete({
      ref: { type: 'ref/prompt', name: 'completable-prompt' },
      argument: { name: 'department', value: 'E' },
    });
    expect(completed.completion.values.length).toBeGreaterThan(0);
    seen.push(JSON.stringify([resources, read, prompts, prompt, completed]));
    await client.close();
  }, 30_000);

  it('keeps the client’s progress token and delivers progress notifications', async () => {
    const { client } = await connectV1();
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
      undefined,
      { onprogress: (p) => progress.push(p.progress) },
    );
    seen.push(JSON.stringify(result));
    expect(progress.length).toBe(3);
    await client.close();
  }, 30_000);

  it('forwards the server’s sampling and elicitation requests to a client that declared them', async () => {
    const { client } = await connectV1();
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      role: 'assistant',
      model: 'test-model',
      content: { type: 'text', text: 'sampled by the agent' },
    }));
    client.setRequestHandler(ElicitRequestSchema, async () => ({
      action: 'accept',
      content: { name: 'Ada', check: true, color: 'red' },
    }));
    const sampled = await client.callTool({
      name: 'trigger-sampling-request',
      arguments: { prompt: 'hello', maxTokens: 10 },
    });
    expect(JSON.stringify(sampled)).toContain('sampled by the agent');
    const elicited = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    expect(JSON.stringify(elicited)).toContain('Ada');
    seen.push(JSON.stringify([sampled, elicited]));
    await client.close();
  }, 30_000);

  it('forwards a cancellation: the call ends, the session goes on', async () => {
    const { client } = await connectV1();
    const controller = new AbortController();
    const pending = client
      .callTool({ name: 'trigger-long-running-operation', arguments: { duration: 5, steps: 5 } }, undefined, {
        signal: controller.signal,
      })
      .catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 300));
    controller.abort('changed my mind');
    expect(String(await pending)).toMatch(/abort|cancel|changed my mind/i);
    const after = await client.callTool({ name: 'echo', arguments: { message: 'still here' } });
    expect(JSON.stringify(after)).toContain('still here');
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
      new TransportV1(new URL(`${addr}/mcp/exiting`), {
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
    const { client } = await connectV1();
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

  it('never lets the injected secret reach the agent, the logs or the audit log', async () => {
    expect(seen.join('\n')).not.toContain(canary);
    expect(t.logs()).not.toContain(canary);
    const all = (await t.request('GET', '/v1/admin/audit/events?limit=1000')).text;
    expect(all).not.toContain(canary);
  });
});
