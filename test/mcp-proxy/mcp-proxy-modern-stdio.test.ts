import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { auditEvents, canary, ok, setUpStdioProxy } from './mcp-proxy-fixtures.js';

const countingUpstream = fileURLToPath(new URL('./counting-upstream.mjs', import.meta.url));

/**
 * Issue 16 item 3 for the 2026-07-28 revision, end to end with real parts: the official v2 client
 * pinned to 2026-07-28 → the vault → server-everything (stdio, the credential injected in its
 * environment), and a small SDK server that reports its cancellations. Progress comes back on the
 * request's own stream under the client's token; the server's sampling, elicitation and roots
 * requests become `input_required` rounds the client's SDK fulfils; closing a request's stream
 * cancels the upstream's work; resources, prompts, completions and cursors go through; everything
 * the agent receives is redacted, and each call is decided at the decision point.
 */
describe('MCP proxy, revision 2026-07-28, to stdio upstreams', () => {
  let t: TestVault;
  let addr: string;
  let key: string;
  let countingKey: string;
  const seen: string[] = [];

  beforeAll(async () => {
    t = await startTestVault();
    addr = await t.vault.listen();
    key = (await setUpStdioProxy(t)).key;
    await ok(t, 'POST', '/v1/admin/mcp-proxies', {
      name: 'counting',
      command: process.execPath,
      args: [countingUpstream],
      credential: 'everything-token',
      injections: [{ in: 'env', name: 'UPSTREAM_API_TOKEN', template: '{{api_key}}' }],
    });
    countingKey = (await ok(t, 'POST', '/v1/admin/mcp-proxies/counting/keys', { agent: 'everything-agent' }))
      .key as string;
    // The first tool list pins the definitions: listed by a client that declares every capability,
    // so the tools server-everything offers only to such clients are pinned too.
    for (const [proxy, token] of [
      ['everything', key],
      ['counting', countingKey],
    ] as const) {
      const client = await modernClient(proxy, token, { sampling: {}, elicitation: {}, roots: {} });
      await client.listTools();
      await client.close();
    }
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
  });

  const modernClient = async (
    proxy: string,
    token: string,
    capabilities: Record<string, object> = {},
  ): Promise<Client> => {
    const client = new Client(
      { name: 'modern-agent', version: '1.0.0' },
      { capabilities, versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${addr}/mcp/${proxy}`), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    );
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    return client;
  };

  /** One raw 2026-07-28 request, as the specification shapes it (headers mirroring the body). */
  const raw = (
    proxy: string,
    token: string,
    method: string,
    params: Record<string, unknown>,
    { id = 1, meta = {} }: { id?: number; meta?: Record<string, unknown> } = {},
  ) =>
    fetch(`${addr}/mcp/${proxy}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': method,
        ...(typeof params.name === 'string' ? { 'mcp-name': params.name } : {}),
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id,
        method,
        params: {
          ...params,
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
            'io.modelcontextprotocol/clientCapabilities': {},
            ...meta,
          },
        },
      }),
    });

  const rawCall = (
    token: string,
    id: number,
    name: string,
    args: Record<string, unknown>,
    extra: { meta?: Record<string, unknown>; params?: Record<string, unknown> } = {},
  ) =>
    raw(
      'everything',
      token,
      'tools/call',
      { name, arguments: args, ...extra.params },
      { id, meta: extra.meta ?? {} },
    );

  /** The JSON-RPC messages of an SSE body. */
  const events = (body: string) =>
    body
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>);

  it('streams progress back on the request’s own stream under the client’s progress token', async () => {
    const client = await modernClient('everything', key);
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    seen.push(JSON.stringify(result));
    expect(JSON.stringify(result.content)).toContain('Long running operation completed');
    expect(progress).toEqual([1, 2, 3]);

    // On the wire: an SSE stream scoped to the request, every progress under the token the client
    // chose (the upstream got one of the vault's), then the answer under the request's id.
    const answer = await rawCall(
      key,
      41,
      'trigger-long-running-operation',
      { duration: 0.4, steps: 2 },
      { meta: { progressToken: 'agent-token-1' } },
    );
    expect(answer.headers.get('content-type')).toContain('text/event-stream');
    const messages = events(await answer.text());
    seen.push(JSON.stringify(messages));
    const notes = messages.filter((m) => m.method === 'notifications/progress');
    expect(notes.map((m) => (m.params as { progressToken: unknown }).progressToken)).toEqual([
      'agent-token-1',
      'agent-token-1',
    ]);
    expect(messages.at(-1)).toMatchObject({ id: 41, result: { resultType: 'complete' } });
    await client.close();
  }, 30_000);

  it('turns the server’s sampling, elicitation and roots requests into input_required rounds, redacted', async () => {
    const client = await modernClient('everything', key, { sampling: {}, elicitation: {}, roots: {} });
    const asked: string[] = [];
    client.setRequestHandler('sampling/createMessage', async (request) => {
      asked.push(JSON.stringify(request));
      return {
        role: 'assistant',
        model: 'test-model',
        content: { type: 'text', text: 'sampled by the agent' },
      };
    });
    client.setRequestHandler('elicitation/create', async (request) => {
      asked.push(JSON.stringify(request));
      return { action: 'accept', content: { name: 'Ada', check: true } };
    });
    client.setRequestHandler('roots/list', async () => ({
      roots: [{ uri: 'file:///srv/agent-project', name: 'agent project' }],
    }));
    // The upstream echoes the prompt into its sampling request: the vault redacts it on the way.
    const sampled = await client.callTool({
      name: 'trigger-sampling-request',
      arguments: { prompt: `summarise ${canary}`, maxTokens: 10 },
    });
    expect(JSON.stringify(sampled)).toContain('sampled by the agent');
    expect(asked[0]).toContain('summarise [REDACTED]');
    const elicited = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    expect(JSON.stringify(elicited)).toContain('Ada');
    const roots = await client.callTool({ name: 'get-roots-list', arguments: {} });
    expect(JSON.stringify(roots)).toContain('file:///srv/agent-project');
    seen.push(...asked, JSON.stringify([sampled, elicited, roots]));
    // Each call is one decided, audited use, however many rounds it took.
    const calls = (await auditEvents(t, 'mcp_proxy.call')).filter(
      (e) =>
        e.details.tool === 'trigger-sampling-request' || e.details.tool === 'trigger-elicitation-request',
    );
    expect(calls.map((e) => [e.decision, e.details.outcome])).toEqual([
      ['allow', 'ok'],
      ['allow', 'ok'],
    ]);

    // A client that declared none of them is served by an upstream session that knows it.
    const plain = await modernClient('everything', key);
    const names = (await plain.listTools()).tools.map((tool) => tool.name);
    expect(names).toContain('echo');
    expect(names).not.toContain('trigger-sampling-request');
    await plain.close();
    await client.close();
  }, 30_000);

  it('keeps each requestState to its key and its request, and to one use', async () => {
    const meta = { 'io.modelcontextprotocol/clientCapabilities': { elicitation: {} } };
    const first = await rawCall(key, 51, 'trigger-elicitation-request', {}, { meta });
    const round = (await first.json()) as {
      id: number;
      result: { resultType: string; inputRequests: Record<string, { method: string }>; requestState: string };
    };
    expect(round.id).toBe(51);
    expect(round.result.resultType).toBe('input_required');
    const [askedKey, request] = Object.entries(round.result.inputRequests)[0]!;
    expect(request.method).toBe('elicitation/create');
    const state = round.result.requestState;
    const answer = { [askedKey]: { action: 'accept', content: { name: 'Grace', check: true } } };
    const retry = (token: string, id: number, name = 'trigger-elicitation-request') =>
      rawCall(token, id, name, {}, { meta, params: { inputResponses: answer, requestState: state } });

    // Another key of the same agent, and another request of the same key, get nothing from it.
    const otherKey = (
      await ok(t, 'POST', '/v1/admin/mcp-proxies/everything/keys', { agent: 'everything-agent' })
    ).key as string;
    for (const refused of [await retry(otherKey, 52), await retry(key, 53, 'echo')]) {
      const body = (await refused.json()) as { error: { data: { code: string } } };
      expect(body.error.data.code).toBe('mcp_request_state_invalid');
    }
    const done = (await (await retry(key, 54)).json()) as { id: number; result: unknown };
    expect(done.id).toBe(54);
    expect(JSON.stringify(done.result)).toContain('Grace');
    const replayed = (await (await retry(key, 55)).json()) as { error: { data: { code: string } } };
    expect(replayed.error.data.code).toBe('mcp_request_state_invalid');
    seen.push(JSON.stringify([round, done]));
  }, 30_000);

  it('cancels the upstream’s work when the client closes the request’s stream', async () => {
    const client = await modernClient('counting', countingKey);
    const controller = new AbortController();
    const pending = client
      .callTool({ name: 'wait', arguments: {} }, { signal: controller.signal })
      .catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 500));
    controller.abort('changed my mind');
    expect(String(await pending)).toMatch(/abort|cancel|changed my mind/i);
    // The upstream saw the cancellation (same shared upstream session, so the same counters).
    let report = '';
    for (let i = 0; i < 50 && !report.includes('cancelled=1'); i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      report = JSON.stringify(await client.callTool({ name: 'cancellations', arguments: {} }));
    }
    expect(report).toContain('started=1 cancelled=1');
    const waits = (await auditEvents(t, 'mcp_proxy.call')).filter((e) => e.details.tool === 'wait');
    expect(waits.map((e) => e.reason)).toEqual(['mcp_request_cancelled']);
    await client.close();
  }, 30_000);

  it('passes resources, templates, prompts, completions and pagination cursors through', async () => {
    const client = await modernClient('everything', key);
    const { resources } = await client.listResources();
    expect(resources.length).toBeGreaterThan(0);
    const read = await client.readResource({ uri: resources[0]!.uri });
    expect(read.contents.length).toBeGreaterThan(0);
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.length).toBeGreaterThan(0);
    const { prompts } = await client.listPrompts();
    const simple = prompts.find((p) => (p.arguments ?? []).every((a) => !a.required)) ?? prompts[0]!;
    const prompt = await client.getPrompt({ name: simple.name, arguments: {} });
    expect(prompt.messages.length).toBeGreaterThan(0);
    const completed = await client.complete({
      ref: { type: 'ref/prompt', name: 'completable-prompt' },
      argument: { name: 'department', value: 'E' },
    });
    expect(completed.completion.values.length).toBeGreaterThan(0);
    seen.push(JSON.stringify([resources, read, resourceTemplates, prompts, prompt, completed]));

    // The upstream pages two resources at a time, and its cursors go both ways as they are: without
    // a cursor the v2 client follows them itself (every page, in order); with one it gets that page.
    const counting = await modernClient('counting', countingKey);
    const all = await counting.listResources();
    expect(all.resources.map((r) => r.uri)).toEqual([1, 2, 3, 4, 5].map((n) => `counting://item/${n}`));
    const page = await counting.listResources({ cursor: '2' });
    expect(page.resources.map((r) => r.uri)).toEqual(['counting://item/3', 'counting://item/4']);
    expect(page.nextCursor).toBe('4');
    await counting.close();
    await client.close();
  }, 30_000);

  it('delivers resource updates on a subscriptions/listen stream, subscribed upstream for it', async () => {
    const client = await modernClient('everything', key);
    const { resources } = await client.listResources();
    const uri = resources[0]!.uri;
    const updates: string[] = [];
    client.setNotificationHandler('notifications/resources/updated', (note) => {
      updates.push(note.params.uri);
    });
    const subscription = await client.listen({ resourceSubscriptions: [uri], toolsListChanged: true });
    expect(subscription.honoredFilter).toEqual({ resourceSubscriptions: [uri], toolsListChanged: true });
    // server-everything sends an update for every subscribed resource once this is turned on.
    const toggled = await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    seen.push(JSON.stringify(toggled));
    for (let i = 0; i < 60 && updates.length === 0; i += 1)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(updates[0]).toBe(uri);
    await subscription.close();
    await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    await client.close();
  }, 30_000);

  it('redacts the injected variable, and still refuses a denied tool at the decision point', async () => {
    const client = await modernClient('everything', key);
    const env = await client.callTool({ name: 'get-env', arguments: {} });
    const text = JSON.stringify(env);
    seen.push(text);
    expect(text).toContain('UPSTREAM_API_TOKEN');
    expect(text).toContain('[REDACTED]');
    const refused = await client.callTool({ name: 'get-tiny-image', arguments: {} }).catch((e: unknown) => e);
    seen.push(String(refused));
    expect(String(refused)).toMatch(/tool lists/);
    const denied = (await auditEvents(t, 'mcp_proxy.call')).filter(
      (e) => e.details.tool === 'get-tiny-image',
    );
    expect(denied.map((e) => e.reason)).toEqual(['mcp_tool_denied']);
    await client.close();
  }, 30_000);

  it('never lets the injected secret reach the agent, the logs or the audit log', async () => {
    expect(seen.length).toBeGreaterThan(5);
    expect(seen.join('\n')).not.toContain(canary);
    expect(t.logs()).not.toContain(canary);
    const all = (await t.request('GET', '/v1/admin/audit/events?limit=1000')).text;
    expect(all).not.toContain(canary);
  });
});
