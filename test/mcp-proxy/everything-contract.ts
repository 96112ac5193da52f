import {
  Client as ClientV2,
  SSEClientTransport as SseTransportV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport as SseTransportV1 } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { expect, it } from 'vitest';
import type { TestVault } from '../helpers/vault.js';
import { auditEvents, canary } from './mcp-proxy-fixtures.js';

/**
 * What an agent must be able to do through an MCP proxy to server-everything, whatever the upstream's
 * transport (a stdio child, Streamable HTTP, SSE) and whichever transport the agent speaks (Streamable
 * HTTP, or the deprecated HTTP+SSE): the same cases, run by each test with the official SDK clients
 * v1 and v2. server-everything's `get-env` answers with a variable
 * holding the credential's secret (injected into a stdio child; set in an HTTP server's environment),
 * so every answer is also a redaction test.
 */
export interface EverythingProxy {
  t: TestVault;
  addr: string;
  /** The proxy's name; its tool lists deny `get-tiny-image`. */
  proxy: string;
  key: string;
  agent: string;
  credential: string;
  /** Everything the agents received, for the canary check at the end. */
  seen: string[];
  /** How the agents reach the vault: Streamable HTTP (`/mcp/{proxy}`, the default) or the deprecated HTTP+SSE. */
  agentTransport?: 'streamable-http' | 'sse';
}

export const connectV1 = async (ctx: EverythingProxy, token = ctx.key) => {
  const client = new ClientV1(
    { name: 'v1-agent', version: '1.0.0' },
    { capabilities: { sampling: {}, elicitation: {} } },
  );
  const requestInit = { headers: { Authorization: `Bearer ${token}`, Cookie: 'session=agent-cookie' } };
  const transport =
    ctx.agentTransport === 'sse'
      ? new SseTransportV1(new URL(`${ctx.addr}/mcp/${ctx.proxy}/sse`), { requestInit })
      : new TransportV1(new URL(`${ctx.addr}/mcp/${ctx.proxy}`), { requestInit });
  await client.connect(transport);
  return { client, transport };
};

export const connectV2 = async (ctx: EverythingProxy) => {
  const client = new ClientV2({ name: 'v2-agent', version: '2.0.0' }, { capabilities: {} });
  const requestInit = { headers: { Authorization: `Bearer ${ctx.key}` } };
  await client.connect(
    ctx.agentTransport === 'sse'
      ? new SseTransportV2(new URL(`${ctx.addr}/mcp/${ctx.proxy}/sse`), { requestInit })
      : new TransportV2(new URL(`${ctx.addr}/mcp/${ctx.proxy}`), { requestInit }),
  );
  return client;
};

/** The cases, registered in the calling `describe` (its `beforeAll` fills the context). */
export const everythingContract = (context: () => EverythingProxy) => {
  it('lists and calls tools through the vault with the v1 client, denied tools absent', async () => {
    const ctx = context();
    const { client } = await connectV1(ctx);
    const { tools } = await client.listTools();
    const names = tools.map((tool) => tool.name);
    expect(names).toContain('echo');
    expect(names).toContain('get-env');
    expect(names).not.toContain('get-tiny-image');
    const echoed = await client.callTool({ name: 'echo', arguments: { message: 'hello through the vault' } });
    ctx.seen.push(JSON.stringify(echoed));
    expect(JSON.stringify(echoed.content)).toContain('hello through the vault');
    await client.close();
  }, 30_000);

  it('lists and calls tools with the v2 client, progress notifications included', async () => {
    const ctx = context();
    const client = await connectV2(ctx);
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).not.toContain('get-tiny-image');
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    ctx.seen.push(JSON.stringify([tools, result]));
    expect(progress.length).toBe(3);
    await client.close();
  }, 30_000);

  it('answers get-env with the secret redacted, and audits the call', async () => {
    const ctx = context();
    const { client } = await connectV1(ctx);
    const env = await client.callTool({ name: 'get-env', arguments: {} });
    const text = JSON.stringify(env);
    ctx.seen.push(text);
    expect(text).toContain('UPSTREAM_API_TOKEN');
    expect(text).toContain('[REDACTED]');
    expect(text).not.toContain(canary);
    const calls = await auditEvents(ctx.t, 'mcp_proxy.call');
    const call = calls.find((e) => e.details.tool === 'get-env' && e.details.proxy_name === ctx.proxy);
    expect(call).toMatchObject({
      decision: 'allow',
      details: {
        agent_name: ctx.agent,
        proxy_name: ctx.proxy,
        credential_name: ctx.credential,
        outcome: 'ok',
      },
    });
    expect(call?.details.redactions).toBeGreaterThan(0);
    expect(call?.details.arguments_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof call?.details.latency_ms).toBe('number');
    await client.close();
  }, 30_000);

  it('refuses a denied tool on call with its own code, audited', async () => {
    const ctx = context();
    const { client } = await connectV1(ctx);
    const refused = await client.callTool({ name: 'get-tiny-image', arguments: {} }).catch((e: unknown) => e);
    ctx.seen.push(JSON.stringify(refused));
    expect(String(refused)).toMatch(/tool lists/);
    const denied = (await auditEvents(ctx.t, 'mcp_proxy.call')).filter(
      (e) => e.decision === 'deny' && e.details.proxy_name === ctx.proxy,
    );
    expect(denied.map((e) => e.reason)).toContain('mcp_tool_denied');
    await client.close();
  }, 30_000);

  it('reads resources, gets prompts and completes through the v2 client', async () => {
    const ctx = context();
    const client = await connectV2(ctx);
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
    ctx.seen.push(JSON.stringify([resources, read, prompts, prompt, completed]));
    await client.close();
  }, 30_000);

  it('keeps the v1 client’s progress token and delivers progress notifications', async () => {
    const ctx = context();
    const { client } = await connectV1(ctx);
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
      undefined,
      { onprogress: (p) => progress.push(p.progress) },
    );
    ctx.seen.push(JSON.stringify(result));
    expect(progress.length).toBe(3);
    await client.close();
  }, 30_000);

  it('forwards the server’s sampling and elicitation requests to a client that declared them', async () => {
    const ctx = context();
    const { client } = await connectV1(ctx);
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
    ctx.seen.push(JSON.stringify([sampled, elicited]));
    await client.close();
  }, 30_000);

  it('forwards a cancellation: the call ends, the session goes on', async () => {
    const ctx = context();
    const { client } = await connectV1(ctx);
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
};

/** The canary check over everything of a whole test file: register it last. */
export const itNeverLeaksTheSecret = (context: () => EverythingProxy) => {
  it('never lets the injected secret reach the agent, the logs or the audit log', async () => {
    const ctx = context();
    expect(ctx.seen.join('\n')).not.toContain(canary);
    expect(ctx.t.logs()).not.toContain(canary);
    const all = (await ctx.t.request('GET', '/v1/admin/audit/events?limit=1000')).text;
    expect(all).not.toContain(canary);
  });
};
