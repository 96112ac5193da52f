import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { OAuthMetadata } from '@modelcontextprotocol/server';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { createSelfSignedCertificate, fetchTrusting, type TestCertificate } from '../helpers/tls-cert.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, retrieve, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { type ProtectedMcpServer, startProtectedMcpServer } from './mcp-protected-server.js';
import { freePort } from './oauth-app-fixture.js';

/**
 * Issue 13 item 5, the Client ID Metadata Document branch, end to end: the vault serves HTTPS itself
 * (a self-signed certificate the authorization server is made to trust), a remote MCP server built with
 * the official SDK is protected by a real oidc-provider with client ID metadata documents enabled, and
 * `tokenvault oauth app discover` (the real CLI, trusting the certificate by NODE_EXTRA_CA_CERTS) makes
 * the vault's document URL its client_id instead of registering. The provider fetches the document when
 * the person's browser (Chromium) arrives; the token the public client gets, with PKCE and the MCP
 * server’s resource, works at the MCP server, and so do its refresh and its revocation.
 */
describe('MCP authorization discovery with a client ID metadata document', () => {
  let cert: TestCertificate;
  let op: TestOAuthServer;
  let mcp: ProtectedMcpServer;
  let t: TestVault;
  let vaultUrl: string;
  let agent: TestAgent;
  let browser: Browser;
  let cli: (args: string[]) => ReturnType<typeof runCli>;

  beforeAll(async () => {
    cert = createSelfSignedCertificate();
    const port = await freePort();
    const publicUrl = `https://127.0.0.1:${port}`;
    op = await startOAuthServer({
      accessTokenTtl: 120,
      clientIdMetadataDocuments: { fetch: fetchTrusting(cert.cert) },
    });
    const oidcMetadata = (await (
      await fetch(`${op.issuer}/.well-known/openid-configuration`)
    ).json()) as OAuthMetadata;
    mcp = await startProtectedMcpServer({
      oauthMetadata: oidcMetadata,
      introspect: (token) => op.introspect(token),
    });
    t = await startTestVault({
      settings: {
        port: String(port),
        publicUrl,
        outboundAllow: '127.0.0.1',
        oauthAllowHttp: 'true',
        tlsCertFile: cert.certFile,
        tlsKeyFile: cert.keyFile,
      },
    });
    vaultUrl = await t.vault.listen();
    agent = await addAgent(t, 'helper');
    const env = cleanEnv({
      TOKENVAULT_ADDR: vaultUrl,
      TOKENVAULT_TOKEN: t.rootToken,
      NODE_EXTRA_CA_CERTS: cert.certFile,
    });
    cli = (args) => runCli(args, { cwd: t.dataDir, env });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
    await mcp?.stop();
    await op?.stop();
    cert?.remove();
  });

  const callWhoami = async (token: string) => {
    const client = new Client({ name: 'agent', version: '1.0.0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(mcp.url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    });
    await client.connect(transport);
    try {
      return await client.callTool({ name: 'whoami', arguments: {} });
    } finally {
      await client.close();
    }
  };

  it('identifies the vault by its document, the provider fetches it at consent, and the token works', async () => {
    expect(vaultUrl.startsWith('https://')).toBe(true);
    const documentUrl = `${vaultUrl}/v1/oauth/client-metadata.json`;

    // The document: public, cacheable, the vault's callback, a public client, and nothing secret.
    const served = await fetchTrusting(cert.cert)(documentUrl);
    expect(served.status).toBe(200);
    expect(served.headers.get('cache-control')).toBe('public, max-age=300');
    const document = (await served.json()) as Record<string, unknown>;
    expect(document).toEqual({
      client_id: documentUrl,
      client_name: 'Token Vault',
      client_uri: vaultUrl,
      redirect_uris: [`${vaultUrl}/v1/oauth/callback`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });

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
      client_id: documentUrl,
      client_secret_set: false,
      registration: 'client_id_metadata_document',
      resource: mcp.url,
    });
    // Nothing was registered: the provider has not even looked at the vault yet.
    expect(op.metadataDocumentFetches()).toEqual([]);
    const events = (await t.request('GET', '/v1/admin/audit/events?limit=1000')).text;
    expect(events).toContain('"registration":"client_id_metadata_document"');

    const shown = await cli(['oauth', 'app', 'show', 'remote']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/registration:\s+client ID metadata document/);
    expect(shown.stdout).toContain('none (public client)');

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

    // The person: the vault's page, then the provider's sign-in and consent, then back to the vault.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const page = await context.newPage();
      await page.goto(link.url);
      await page.click('button[type=submit]');
      await page.waitForURL((url) => url.href.startsWith(op.issuer), { timeout: 15_000 });
      await page.fill('input[name=login]', 'alice');
      await page.click('button:has-text("Sign in")');
      await page
        .locator('meta[name=prompt][content=consent]')
        .waitFor({ state: 'attached', timeout: 15_000 });
      await page.click('button:has-text("Allow")');
      await page.waitForURL((url) => url.href.startsWith(`${vaultUrl}/v1/oauth/callback`), {
        timeout: 15_000,
      });
      expect(await page.textContent('body')).toContain('Connected');
    } finally {
      await context.close();
    }
    // The provider learnt who the client is from the vault's own document, over TLS.
    expect(op.metadataDocumentFetches()).toContain(documentUrl);

    const answer = await retrieve(t, agent, { agent: 'helper', service: 'remote', query: '?user=alice' });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    const token = (answer.body as { access_token: string }).access_token;
    expect(op.resource).not.toBe(mcp.url);
    expect(await op.introspect(token)).toMatchObject({
      active: true,
      sub: 'alice',
      client_id: documentUrl,
      aud: mcp.url,
    });
    expect((await callWhoami(token)).content).toEqual([{ type: 'text', text: 'sub=alice' }]);
    expect(op.tokenResources('authorization_code').at(-1)).toBe(mcp.url);

    // A public client's refresh (no secret, `none`) with the resource again.
    const refreshed = await cli(['credential', 'refresh', 'remote', '--user', 'alice', '--json']);
    expect(refreshed.code, refreshed.stderr).toBe(0);
    const again = await retrieve(t, agent, { agent: 'helper', service: 'remote', query: '?user=alice' });
    const newToken = (again.body as { access_token: string }).access_token;
    expect(newToken).not.toBe(token);
    expect(await op.introspect(newToken)).toMatchObject({
      active: true,
      client_id: documentUrl,
      aud: mcp.url,
    });
    expect(op.tokenResources('refresh_token').at(-1)).toBe(mcp.url);
    expect((await callWhoami(newToken)).content).toEqual([{ type: 'text', text: 'sub=alice' }]);
    expect(t.logs()).not.toContain(token);
    expect(t.logs()).not.toContain(newToken);

    // Removing the credential revokes its tokens as the same public client (RFC 7009, no secret).
    const removed = await t.request('DELETE', '/v1/admin/credentials/remote');
    expect(removed.status, removed.text).toBe(200);
    expect(removed.body).toMatchObject({ revocation: { status: 'revoked' } });
    expect((await op.introspect(newToken)).active).toBe(false);
  });

  it('registers dynamically at the same server when the vault has no https public URL', async () => {
    const plain = await startTestVault({
      settings: { publicUrl: 'http://127.0.0.1:9', outboundAllow: '127.0.0.1', oauthAllowHttp: 'true' },
    });
    try {
      // No https URL, no document: no server would accept an http client_id.
      const document = await plain.request('GET', '/v1/oauth/client-metadata.json', { token: null });
      expect(document.status).toBe(404);
      const added = await plain.request('POST', '/v1/admin/oauth/apps/discover', {
        body: { mcp_url: mcp.url, name: 'plain' },
      });
      expect(added.status, added.text).toBe(201);
      expect(added.body).toMatchObject({
        registration: 'dynamic_client_registration',
        client_secret_set: true,
        resource: mcp.url,
      });
      expect(String((added.body as { client_id: string }).client_id)).not.toMatch(/^https:/);
      // Asked for the document by name, it says why it cannot, and registers nothing.
      const forced = await plain.request('POST', '/v1/admin/oauth/apps/discover', {
        body: { mcp_url: mcp.url, name: 'forced', registration: 'client_id_metadata_document' },
      });
      expect(forced.status, forced.text).toBe(502);
      expect((forced.body as { error: { code: string; message: string } }).error).toMatchObject({
        code: 'mcp_client_registration_failed',
        message: expect.stringContaining('need the vault reachable over https') as unknown,
      });
      expect((await plain.request('GET', '/v1/admin/oauth/apps/forced')).status).toBe(404);
    } finally {
      await plain.stop();
    }
  });

  it('registers dynamically when told to, even where its document would do', async () => {
    const fetchesBefore = op.metadataDocumentFetches().length;
    const added = await cli([
      'oauth',
      'app',
      'discover',
      '--mcp-url',
      mcp.url,
      '--name',
      'registered',
      '--registration',
      'dynamic',
      '--json',
    ]);
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({
      registration: 'dynamic_client_registration',
      client_secret_set: true,
      resource: mcp.url,
    });
    expect(op.metadataDocumentFetches().length).toBe(fetchesBefore);
    const wrong = await cli(['oauth', 'app', 'discover', '--mcp-url', mcp.url, '--registration', 'cimd']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('--registration is auto, metadata-document or dynamic');
  });
});
