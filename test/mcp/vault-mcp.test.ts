import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vaultToolDefinitions } from '../../src/mcp/vault-server/vault-tool-definitions.js';
import { audience, newSigningKey, signAssertion } from '../agents/agent-fixtures.js';
import { addAgent, breakAuditWrites, grant, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { startUpstream } from '../proxy/proxy-upstream.js';

/**
 * The vault's own MCP server end to end: a real vault on a socket, the official SDK's clients (v1
 * `@modelcontextprotocol/sdk`, on the 2025 `initialize` revisions; v2 `@modelcontextprotocol/client`
 * on both those and the stateless 2026-07-28 revision), and a real upstream API on 127.0.0.1 that
 * echoes what it receives (so an injected secret comes back, and must be redacted).
 */

const canary = 'mcp-canary-secret-5c1e8b7a90';
const revealed = 'mcp-revealed-token-2b9d44e1';

/** What a tool answered, whichever SDK the client came from. */
interface ToolAnswer {
  isError?: boolean;
  structuredContent?: Record<string, unknown>;
  content: unknown[];
}

interface McpClient {
  label: string;
  listTools(): Promise<string[]>;
  call(name: string, args: Record<string, unknown>): Promise<ToolAnswer>;
  close(): Promise<void>;
}

type Connect = (url: URL, key: string) => Promise<McpClient>;

const auth = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

const clients: Record<string, Connect> = {
  'v1 (2025 revisions, initialize)': async (url, key) => {
    const client = new ClientV1({ name: 'test-v1', version: '1.0.0' });
    await client.connect(new TransportV1(url, { requestInit: auth(key) }));
    return {
      label: 'v1',
      listTools: async () => (await client.listTools()).tools.map((tool) => tool.name),
      call: async (name, args) => (await client.callTool({ name, arguments: args })) as ToolAnswer,
      close: () => client.close(),
    };
  },
  'v2 (2025 revisions, initialize)': async (url, key) => {
    const client = new ClientV2({ name: 'test-v2-legacy', version: '1.0.0' });
    await client.connect(new TransportV2(url, { requestInit: auth(key) }));
    return {
      label: 'v2-legacy',
      listTools: async () => (await client.listTools()).tools.map((tool) => tool.name),
      call: async (name, args) => (await client.callTool({ name, arguments: args })) as ToolAnswer,
      close: () => client.close(),
    };
  },
  'v2 (2026-07-28, server/discover)': async (url, key) => {
    const client = new ClientV2(
      { name: 'test-v2-modern', version: '1.0.0' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await client.connect(new TransportV2(url, { requestInit: auth(key) }));
    return {
      label: 'v2-modern',
      listTools: async () => (await client.listTools()).tools.map((tool) => tool.name),
      call: async (name, args) => (await client.callTool({ name, arguments: args })) as ToolAnswer,
      close: () => client.close(),
    };
  },
};

describe('the vault’s MCP server (/mcp)', () => {
  let t: TestVault;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let url: URL;
  let agent: TestAgent;
  let other: TestAgent;

  const addCredential = async (body: Record<string, unknown>) => {
    const response = await t.request('POST', '/v1/admin/credentials', { body });
    expect(response.status, response.text).toBe(201);
  };

  beforeAll(async () => {
    upstream = await startUpstream();
    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1', audience } });
    url = new URL('/mcp', await t.vault.listen());
    agent = await addAgent(t, 'mcp-agent');
    other = await addAgent(t, 'mcp-other');
    // Proxy-only: call_api may use it, get_credential may not.
    await addCredential({
      name: 'echo-api',
      type: 'api_key',
      secret: { api_key: canary },
      base_url: `http://${upstream.host}/api`,
      allowed_hosts: [upstream.host],
    });
    await grant(t, { agent: agent.name, credential: 'echo-api', until_revoked: true, scopes: [] });
    await addCredential({ name: 'revealable', type: 'bearer', secret: { token: revealed } });
    await grant(t, { agent: agent.name, credential: 'revealable', ttl: '1h', reveal: true });
    await addCredential({ name: 'not-granted', type: 'bearer', secret: { token: 'never-granted-1234' } });
  });
  afterAll(async () => {
    await t?.stop();
    await upstream?.close();
  });

  describe.each(Object.entries(clients))('with the official SDK client %s', (_label, connect) => {
    let client: McpClient;
    beforeAll(async () => {
      client = await connect(url, agent.apiKey);
    });
    afterAll(async () => client?.close());

    it('lists the vault’s tools', async () => {
      expect((await client.listTools()).sort()).toEqual(['call_api', 'get_credential', 'list_credentials']);
      // Each declares its audit: the events the tests below find, or why there is none.
      expect(Object.fromEntries(vaultToolDefinitions.map((tool) => [tool.name, tool.audit]))).toEqual({
        list_credentials: { none: expect.any(String) },
        get_credential: { event: 'credential.retrieve', recordedBy: 'service' },
        call_api: { event: 'credential.proxy', recordedBy: 'service' },
      });
    });

    it('lists the agent’s granted credentials with whether they reveal', async () => {
      const answer = await client.call('list_credentials', {});
      expect(answer.isError ?? false).toBe(false);
      const listed = (answer.structuredContent as { credentials: Record<string, unknown>[] }).credentials;
      const byName = Object.fromEntries(listed.map((c) => [c.name, c]));
      expect(Object.keys(byName).sort()).toEqual(['echo-api', 'revealable']);
      expect(byName['revealable']).toMatchObject({ reveal: true });
      expect(byName['revealable']?.expires_at).toEqual(expect.any(String));
      expect(byName['echo-api']).toMatchObject({ reveal: false, expires_at: null });
    });

    it('gets a revealed credential, recorded as credential.retrieve via mcp', async () => {
      const answer = await client.call('get_credential', { credential: 'revealable' });
      expect(answer.isError ?? false).toBe(false);
      expect(answer.structuredContent).toMatchObject({ access_token: revealed, token_type: 'Bearer' });
      const event = await lastEvent('credential.retrieve');
      expect(event).toMatchObject({ decision: 'allow', actor_id: agent.id, target_id: 'revealable' });
      expect(event.details).toMatchObject({ via: 'mcp', mcp_tool: 'get_credential' });
    });

    it('calls an API through call_api: the credential injected, the echoed secret redacted', async () => {
      const before = upstream.seen.length;
      const answer = await client.call('call_api', {
        credential: 'echo-api',
        method: 'POST',
        path: '/v1/echo?label=' + client.label,
        headers: { 'content-type': 'application/json', 'x-custom': 'kept' },
        body: JSON.stringify({ hello: 'world' }),
      });
      expect(answer.isError ?? false, JSON.stringify(answer)).toBe(false);
      const seen = upstream.seen[before]!;
      expect(seen.method).toBe('POST');
      expect(seen.url).toBe(`/api/v1/echo?label=${client.label}`);
      expect(seen.headers['x-custom']).toBe('kept');
      expect(seen.bytes).toBe(JSON.stringify({ hello: 'world' }).length);
      // The injection reached the upstream; the agent's own key never did.
      expect(JSON.stringify(seen.headers)).toContain(canary);
      expect(JSON.stringify(seen.rawHeaders)).not.toContain(agent.apiKey);
      const result = answer.structuredContent as { status: number; body: string; headers: object };
      expect(result.status).toBe(200);
      expect(result.body).toContain('[REDACTED]');
      expect(JSON.stringify(answer)).not.toContain(canary);
      const event = await lastEvent('credential.proxy');
      expect(event).toMatchObject({ decision: 'allow', actor_id: agent.id, target_id: 'echo-api' });
      expect(event.details).toMatchObject({ via: 'mcp', mcp_tool: 'call_api', status: 200 });
    });

    it('refuses with the vault’s codes as tool errors', async () => {
      const notGranted = await client.call('get_credential', { credential: 'not-granted' });
      expect(notGranted.isError).toBe(true);
      expect(notGranted.structuredContent).toMatchObject({ code: 'credential_not_granted' });

      const proxyOnly = await client.call('get_credential', { credential: 'echo-api' });
      expect(proxyOnly.isError).toBe(true);
      expect(proxyOnly.structuredContent).toMatchObject({
        code: 'reveal_not_granted',
        message: expect.any(String),
        request_id: expect.any(String),
      });
      expect(JSON.stringify(proxyOnly)).not.toContain(canary);
      const event = await lastEvent('credential.retrieve');
      expect(event).toMatchObject({ decision: 'deny', reason: 'reveal_not_granted', target_id: 'echo-api' });
      expect(event.details).toMatchObject({ via: 'mcp' });
    });
  });

  it('stops call_api on the next call once the grant is revoked', async () => {
    await addCredential({
      name: 'revoke-me',
      type: 'bearer',
      secret: { token: 'revoke-me-secret-0042' },
      base_url: `http://${upstream.host}/api`,
      allowed_hosts: [upstream.host],
    });
    const granted = await grant(t, { agent: other.name, credential: 'revoke-me', until_revoked: true });
    const client = await clients['v2 (2026-07-28, server/discover)']!(url, other.apiKey);
    try {
      const first = await client.call('call_api', { credential: 'revoke-me', path: '/v1/echo' });
      expect(first.isError ?? false).toBe(false);
      const revoke = await t.request('DELETE', `/v1/admin/grants/${granted.id}`);
      expect(revoke.status, revoke.text).toBeLessThan(300);
      const next = await client.call('call_api', { credential: 'revoke-me', path: '/v1/echo' });
      expect(next.isError).toBe(true);
      expect(next.structuredContent).toMatchObject({ code: 'grant_revoked' });
    } finally {
      await client.close();
    }
  });

  it('authenticates an agent that signs a JWT assertion per request, and refuses one replayed', async () => {
    const key = await newSigningKey();
    const registered = await t.request('PUT', `/v1/admin/agents/${agent.name}/jwks`, {
      body: { jwks: { keys: [key.publicJwk] } },
    });
    expect(registered.status, registered.text).toBeLessThan(300);
    let last = '';
    // An assertion is single use (its jti), so the client signs one for each HTTP request.
    const signing = async (input: string | URL | Request, init?: RequestInit) => {
      last = await signAssertion(key, { agentId: agent.id, now: new Date() });
      const headers = new Headers(init?.headers);
      headers.set('authorization', `Bearer ${last}`);
      return fetch(input, { ...init, headers });
    };
    const client = new ClientV2(
      { name: 'jwt-agent', version: '1' },
      { versionNegotiation: { mode: 'auto' } },
    );
    await client.connect(new TransportV2(url, { fetch: signing }));
    try {
      const answer = await client.callTool({
        name: 'get_credential',
        arguments: { credential: 'revealable' },
      });
      expect(answer.structuredContent).toMatchObject({ access_token: revealed });
      const event = await lastEvent('credential.retrieve');
      expect(event.details).toMatchObject({ via: 'mcp', auth_method: 'jwt' });
    } finally {
      await client.close();
    }
    const replayed = await fetch(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${last}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(replayed.status).toBe(401);
    expect(((await replayed.json()) as { error: { code: string } }).error.code).toBe('jwt_replayed');
  });

  it('refuses a header with CR/LF and returns no unscanned body', async () => {
    const client = await clients['v1 (2025 revisions, initialize)']!(url, agent.apiKey);
    try {
      const before = upstream.seen.length;
      const crlf = await client.call('call_api', {
        credential: 'echo-api',
        path: '/v1/echo',
        headers: { 'x-split': 'a\r\nx-injected: yes' },
      });
      expect(crlf.structuredContent).toMatchObject({ code: 'proxy_header_refused' });
      expect(upstream.seen.length).toBe(before);

      const binary = await client.call('call_api', {
        credential: 'echo-api',
        path: '/v1/download?bytes=1000',
      });
      expect(binary.isError ?? false).toBe(false);
      expect(binary.structuredContent).toMatchObject({ status: 200, body: null });
      expect((binary.structuredContent as { body_omitted: string }).body_omitted).toMatch(/not returned/);
    } finally {
      await client.close();
    }
  });

  describe('over plain HTTP', () => {
    const initialize = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'raw', version: '1' },
      },
    };
    const post = (headers: Record<string, string>, body: string = JSON.stringify(initialize)) =>
      fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
        body,
      });

    it('answers 401 with the vault’s code to a bad key, and the v1 and v2 clients fail to connect', async () => {
      const response = await post({ authorization: 'Bearer tv_agent_not-a-real-key' });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('agent_key_invalid');
      for (const connect of Object.values(clients)) {
        await expect(connect(url, 'tv_agent_not-a-real-key')).rejects.toThrow();
      }
      const noKey = await post({});
      expect(noKey.status).toBe(401);
    });

    it('hands out no session: every request stands on its own authentication', async () => {
      const response = await post({ authorization: `Bearer ${agent.apiKey}` });
      expect(response.status).toBe(200);
      expect(response.headers.get('mcp-session-id')).toBeNull();
      const get = await fetch(url, {
        headers: { authorization: `Bearer ${agent.apiKey}`, accept: 'text/event-stream' },
      });
      expect(get.status).toBe(405);
    });

    it('takes no session id for authentication', async () => {
      const response = await post({ 'mcp-session-id': 'a-session-someone-else-opened' });
      expect(response.status).toBe(401);
    });

    it('speaks 2026-07-28 per request, and refuses a header that does not match the body', async () => {
      const modern = (method: string, header: string) =>
        post(
          {
            authorization: `Bearer ${agent.apiKey}`,
            'mcp-protocol-version': '2026-07-28',
            'mcp-method': header,
          },
          JSON.stringify({
            jsonrpc: '2.0',
            id: 7,
            method,
            params: {
              _meta: {
                'io.modelcontextprotocol/protocolVersion': '2026-07-28',
                'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
                'io.modelcontextprotocol/clientCapabilities': {},
              },
            },
          }),
        );
      const listed = await modern('tools/list', 'tools/list');
      expect(listed.status).toBe(200);
      const body = (await listed.json()) as { result: { tools: { name: string }[] } };
      expect(body.result.tools.map((tool) => tool.name)).toContain('call_api');

      const mismatched = await modern('tools/list', 'tools/call');
      expect(mismatched.status).toBe(400);
      expect(((await mismatched.json()) as { error: { code: number } }).error.code).toBe(-32020);
    });

    it('refuses a foreign Origin (DNS rebinding) and allows a loopback one', async () => {
      const foreign = await post({ authorization: `Bearer ${agent.apiKey}`, origin: 'http://evil.example' });
      expect(foreign.status).toBe(403);
      expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe('mcp_origin_refused');
      const local = await post({ authorization: `Bearer ${agent.apiKey}`, origin: 'http://localhost:6274' });
      expect(local.status).toBe(200);
    });

    it('caps the request size', async () => {
      const huge = JSON.stringify({
        ...initialize,
        params: { ...initialize.params, pad: 'x'.repeat(300_000) },
      });
      const response = await post({ authorization: `Bearer ${agent.apiKey}` }, huge);
      expect(response.status).toBe(413);
    });
  });

  it('returns no secret when the audit record cannot be written (audit_unavailable)', async () => {
    const client = await clients['v2 (2026-07-28, server/discover)']!(url, agent.apiKey);
    const restore = await breakAuditWrites(t);
    try {
      const reveal = await client.call('get_credential', { credential: 'revealable' });
      expect(reveal.isError).toBe(true);
      expect(reveal.structuredContent).toMatchObject({ code: 'audit_unavailable' });
      expect(JSON.stringify(reveal)).not.toContain(revealed);
      const proxied = await client.call('call_api', { credential: 'echo-api', path: '/v1/echo' });
      expect(proxied.structuredContent).toMatchObject({ code: 'audit_unavailable' });
    } finally {
      await restore();
      await client.close();
    }
  });

  it('selects a per-user credential by `user`, as `?user=` does on REST', async () => {
    const helper = await addAgent(t, 'mcp-per-user');
    for (const [user, token] of [
      ['alice', 'alice-calendar-token-51'],
      ['bob', 'bob-calendar-token-52'],
    ] as const) {
      await addCredential({ name: 'calendar', type: 'bearer', secret: { token }, subject: user });
      await grant(t, { agent: helper.name, credential: 'calendar', ttl: '1h', reveal: true, user });
    }
    const client = await clients['v2 (2025 revisions, initialize)']!(url, helper.apiKey);
    try {
      const bob = await client.call('get_credential', { credential: 'calendar', user: 'bob' });
      expect(bob.structuredContent).toMatchObject({ access_token: 'bob-calendar-token-52' });
      const nobody = await client.call('get_credential', { credential: 'calendar' });
      expect(nobody.isError).toBe(true);
      expect(nobody.structuredContent).toMatchObject({ code: 'end_user_required' });
    } finally {
      await client.close();
    }
  });

  it('is listed in the OpenAPI document', async () => {
    const response = await t.request('GET', '/docs/json', { token: null });
    expect(Object.keys((response.body as { paths: Record<string, unknown> }).paths)).toContain('/mcp');
  });

  it('never lets the canary into logs or audit events', async () => {
    const rows = await t.vault.store.db.selectFrom('audit_events').selectAll().execute();
    expect(rows.length).toBeGreaterThan(0);
    expect(JSON.stringify(rows)).not.toContain(canary);
    expect(t.logs()).not.toContain(canary);
    expect(t.logs()).not.toContain(agent.apiKey);
    // What get_credential reveals on purpose goes to the agent only.
    expect(JSON.stringify(rows)).not.toContain(revealed);
    expect(t.logs()).not.toContain(revealed);
  });

  const lastEvent = async (action: string) => {
    const row = await t.vault.store.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', action)
      .orderBy('seq', 'desc')
      .executeTakeFirstOrThrow();
    return { ...row, details: JSON.parse(row.details) as Record<string, unknown> };
  };
});
