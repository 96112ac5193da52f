import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { OAuthMetadata } from '@modelcontextprotocol/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverMcpServer } from '../../src/oauth/mcp-discovery.js';
import { VaultError } from '../../src/errors/vault-error.js';
import { cliAgainst } from '../helpers/cli-in-process.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, retrieve, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { type ProtectedMcpServer, startProtectedMcpServer } from './mcp-protected-server.js';

const listen = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};
const freePort = async () => {
  const server = createServer();
  const url = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return Number(new URL(url).port);
};

/**
 * An authorization server (RFC 8414 metadata only) whose dynamic client registration always refuses,
 * as a server that allows only pre-registered clients does.
 */
const startRefusingAuthorizationServer = async () => {
  const server = createServer((req, res) => {
    const json = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.url === '/.well-known/oauth-authorization-server') {
      return json(200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        registration_endpoint: `${issuer}/register`,
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (req.method === 'POST' && req.url === '/register') {
      registrations += 1;
      return json(403, { error: 'access_denied', error_description: 'registration is closed' });
    }
    return json(404, { error: 'not_found' });
  });
  let registrations = 0;
  const issuer = await listen(server);
  return {
    issuer,
    metadata: { issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token` },
    registrations: () => registrations,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
};

/**
 * Issue 13 item 5 end to end: a remote MCP server built with the official SDK, protected by a real
 * OpenID Provider; `tokenvault oauth app discover` follows its 401 to its metadata, registers the vault
 * with the provider, and stores an app that `connect` uses; the token it yields is issued for the MCP
 * server's resource (RFC 8707, reported by the provider's introspection) and the MCP server accepts it.
 */
describe('MCP authorization discovery', () => {
  let op: TestOAuthServer;
  let mcp: ProtectedMcpServer;
  let t: TestVault;
  let cli: ReturnType<typeof cliAgainst>;
  let agent: TestAgent;
  let oidcMetadata: OAuthMetadata;
  const stops: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    op = await startOAuthServer({ accessTokenTtl: 120, redirectUris: [`${publicUrl}/v1/oauth/callback`] });
    oidcMetadata = (await (
      await fetch(`${op.issuer}/.well-known/openid-configuration`)
    ).json()) as OAuthMetadata;
    mcp = await startProtectedMcpServer({
      oauthMetadata: oidcMetadata,
      introspect: (token) => op.introspect(token),
    });
    t = await startTestVault({
      settings: { port: String(port), publicUrl, outboundAllow: '127.0.0.1', oauthAllowHttp: 'true' },
    });
    cli = cliAgainst(await t.vault.listen(), t.rootToken);
    agent = await addAgent(t, 'helper');
  });
  afterAll(async () => {
    for (const stop of stops) await stop();
    await t?.stop();
    await mcp?.stop();
    await op?.stop();
  });

  const callWhoami = async (url: string, token: string) => {
    const client = new Client({ name: 'agent', version: '1.0.0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    });
    await client.connect(transport);
    try {
      return await client.callTool({ name: 'whoami', arguments: {} });
    } finally {
      await client.close();
    }
  };

  it('discovers, registers, connects alice, and the MCP server accepts her token', async () => {
    const discovered = await cli([
      'oauth',
      'app',
      'discover',
      '--mcp-url',
      mcp.url,
      '--name',
      'remote',
      '--json',
    ]);
    expect(discovered.code, discovered.stderr).toBe(0);
    const app = JSON.parse(discovered.stdout) as Record<string, unknown>;
    expect(app).toMatchObject({
      name: 'remote',
      provider: 'generic',
      issuer: op.issuer,
      resource: mcp.url,
      client_secret_set: true,
      // This provider does not advertise client ID metadata documents (mcp-cimd.test.ts: one that does).
      registration: 'dynamic_client_registration',
      scopes: ['openid', 'offline_access', 'api:read'],
      endpoints: { authorization: oidcMetadata.authorization_endpoint, token: oidcMetadata.token_endpoint },
    });
    // A client the provider registered just now, not the test's pre-registered one.
    expect(app.client_id).not.toBe(op.client.client_id);
    expect(String(app.client_id).length).toBeGreaterThan(10);

    const made = await cli([
      'connect',
      'remote',
      '--agent',
      'helper',
      '--user',
      'alice',
      '--reveal',
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const link = JSON.parse(made.stdout) as { url: string };
    const browser = op.browser({ account: 'alice' });
    expect((await browser.get(link.url)).status).toBe(200);
    const done = await browser.post(link.url, {});
    expect(done.status, done.body).toBe(200);
    expect(done.body).toContain('Connected');

    const answer = await retrieve(t, agent, { agent: 'helper', service: 'remote', query: '?user=alice' });
    expect(answer.status).toBe(200);
    const token = (answer.body as { access_token: string }).access_token;
    // The provider's default resource is another API: this audience exists only because the vault sent
    // the MCP server's resource on the authorization and token requests.
    expect(op.resource).not.toBe(mcp.url);
    const introspected = await op.introspect(token);
    expect(introspected).toMatchObject({
      active: true,
      sub: 'alice',
      client_id: app.client_id,
      aud: mcp.url,
    });

    const before = mcp.authorized;
    const result = await callWhoami(mcp.url, token);
    expect(result.content).toEqual([{ type: 'text', text: 'sub=alice' }]);
    expect(mcp.authorized).toBeGreaterThan(before);

    // A refresh (a token request without the browser) carries the resource too.
    const refreshed = await cli(['credential', 'refresh', 'remote', '--user', 'alice', '--json']);
    expect(refreshed.code, refreshed.stderr).toBe(0);
    const again = await retrieve(t, agent, { agent: 'helper', service: 'remote', query: '?user=alice' });
    const newToken = (again.body as { access_token: string }).access_token;
    expect(newToken).not.toBe(token);
    expect(await op.introspect(newToken)).toMatchObject({ active: true, aud: mcp.url });
    // Sent, not just inherited from the grant (the provider would fall back to the granted resource).
    expect(op.tokenResources('authorization_code').at(-1)).toBe(mcp.url);
    expect(op.tokenResources('refresh_token').at(-1)).toBe(mcp.url);

    // The registered client secret is stored like any secret: never in the clear.
    const opened = await t.vault.services.oauthApps.open('default', 'remote');
    const secret = opened.client.clientSecret ?? '';
    expect(secret.length).toBeGreaterThan(10);
    const events = (await t.request('GET', '/v1/admin/audit/events?limit=1000')).text;
    expect(events).toContain('oauth_app.create');
    expect(events).not.toContain(secret);
    expect(t.logs()).not.toContain(secret);
    for (const file of readdirSync(t.dataDir).filter((f) => f.startsWith('tokenvault.db'))) {
      expect(readFileSync(join(t.dataDir, file)).includes(secret), file).toBe(false);
    }
  });

  it('falls back to the well-known metadata URL when the 401 does not name it', async () => {
    const bare = await startProtectedMcpServer({
      oauthMetadata: oidcMetadata,
      introspect: (token) => op.introspect(token),
      mode: 'bare-401',
    });
    stops.push(() => bare.stop());
    const added = await t.request('POST', '/v1/admin/oauth/apps/discover', {
      body: { mcp_url: bare.url, name: 'bare', scopes: ['openid', 'api:read'] },
    });
    expect(added.status, added.text).toBe(201);
    expect(added.body).toMatchObject({ name: 'bare', resource: bare.url, scopes: ['openid', 'api:read'] });
  });

  const codeOf = (response: { body: unknown }) => (response.body as { error: { code: string } }).error.code;

  it('refuses a server that does not answer 401 with metadata', async () => {
    const open = await startProtectedMcpServer({
      oauthMetadata: oidcMetadata,
      introspect: (token) => op.introspect(token),
      mode: 'open',
    });
    stops.push(() => open.stop());
    const refused = await t.request('POST', '/v1/admin/oauth/apps/discover', { body: { mcp_url: open.url } });
    expect([refused.status, codeOf(refused)]).toEqual([502, 'mcp_auth_metadata_missing']);
    expect(refused.text).toContain('not 401');
    const cliRefused = await cli(['oauth', 'app', 'discover', '--mcp-url', open.url]);
    expect(cliRefused.code).not.toBe(0);
    expect(cliRefused.stderr).toContain('mcp_auth_metadata_missing');
  });

  it('refuses when the authorization server refuses the registration, and stores nothing', async () => {
    const as = await startRefusingAuthorizationServer();
    stops.push(() => as.stop());
    const closed = await startProtectedMcpServer({
      oauthMetadata: as.metadata as OAuthMetadata,
      introspect: (token) => op.introspect(token),
    });
    stops.push(() => closed.stop());
    const refused = await t.request('POST', '/v1/admin/oauth/apps/discover', {
      body: { mcp_url: closed.url, name: 'closed' },
    });
    expect([refused.status, codeOf(refused)]).toEqual([502, 'mcp_client_registration_failed']);
    expect(as.registrations()).toBe(1);
    expect((await t.request('GET', '/v1/admin/oauth/apps/closed')).status).toBe(404);
  });

  it('refuses metadata that points to a non-https authorization server without the allow-http setting', async () => {
    // The MCP server as an https server (the vault's fetch maps its name to the local one); its
    // metadata names the local provider's http:// issuer, which only TOKENVAULT_OAUTH_ALLOW_HTTP allows.
    const secure = await startProtectedMcpServer({
      oauthMetadata: oidcMetadata,
      introspect: (token) => op.introspect(token),
      resourceUrl: 'https://mcp.test.example/mcp',
    });
    stops.push(() => secure.stop());
    const local = new URL(secure.url).origin;
    const mapped = ((input: string | URL | Request, init?: RequestInit) =>
      fetch(
        String(input instanceof Request ? input.url : input).replace('https://mcp.test.example', local),
        init,
      )) as typeof fetch;
    const failure = await discoverMcpServer('https://mcp.test.example/mcp', {
      fetch: mapped,
      allowHttp: false,
      redirectUri: 'https://vault.example/v1/oauth/callback',
      clientName: 'Token Vault',
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(VaultError);
    expect((failure as VaultError).code).toBe('mcp_auth_insecure_issuer');
  });
});
