import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAgainst } from '../helpers/cli-in-process.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';

const publicUrl = 'https://vault.example.test';
const clientSecret = 'app-secret-CANARY-5b7c1e0f9a';

/** Issue 13 item 2: OAuth apps, stored with the client secret encrypted, over REST and the CLI. */
describe('OAuth apps', () => {
  let op: TestOAuthServer;
  let t: TestVault;
  let cli: ReturnType<typeof cliAgainst>;

  beforeAll(async () => {
    op = await startOAuthServer();
    t = await startTestVault({
      settings: { outboundAllow: '127.0.0.1', oauthAllowHttp: 'true', publicUrl },
    });
    cli = cliAgainst(await t.vault.listen(), t.rootToken);
  });
  afterAll(async () => {
    await t?.stop();
    await op?.stop();
  });

  it('adds an oidc app by discovery and prints the redirect URL to register', async () => {
    const added = await cli(
      [
        'oauth',
        'app',
        'add',
        'oidc',
        '--name',
        'local',
        '--issuer',
        op.issuer,
        '--client-id',
        op.client.client_id,
        '--client-secret-stdin',
        '--scopes',
        'openid,offline_access,api:read',
      ],
      `${clientSecret}\n`,
    );
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain(`${publicUrl}/v1/oauth/callback`);
    expect(added.stdout).not.toContain(clientSecret);

    const shown = await cli(['oauth', 'app', 'show', 'local', '--json']);
    const app = JSON.parse(shown.stdout) as Record<string, unknown>;
    expect(app).toMatchObject({
      name: 'local',
      provider: 'oidc',
      issuer: op.issuer,
      client_id: op.client.client_id,
      client_secret_set: true,
      scopes: ['openid', 'offline_access', 'api:read'],
      redirect_uri: `${publicUrl}/v1/oauth/callback`,
      agent_connect: false,
    });
    expect((app.endpoints as Record<string, string>).token).toBe(`${op.issuer}/token`);
    expect((app.endpoints as Record<string, string>).deviceAuthorization).toBe(`${op.issuer}/device/auth`);
    expect(JSON.stringify(app)).not.toContain(clientSecret);

    const listed = await cli(['oauth', 'app', 'list']);
    expect(listed.stdout).toMatch(/local\s+oidc/);
  });

  it('keeps the client secret encrypted: the resolver opens it, the database file never holds it', async () => {
    const created = await t.vault.services.credentials.create('default', {
      name: 'local-token',
      type: 'oauth2',
      secret: { access_token: 'at-1', refresh_token: 'rt-1' },
      subject: 'alice',
      oauthAppId: (await t.vault.services.oauthApps.get('default', 'local')).id,
    });
    const resolved = await t.vault.services.oauthApps.resolve('default', created.id);
    expect(resolved?.provider.name).toBe('oidc');
    expect(resolved?.app).toMatchObject({
      clientId: op.client.client_id,
      clientSecret,
      issuer: op.issuer,
      clientAuth: 'client_secret_basic',
    });
    expect(resolved?.app.settings?.endpoints?.token).toBe(`${op.issuer}/token`);
    expect(await t.vault.services.oauthApps.resolve('default', 'no-such-credential')).toBeUndefined();

    for (const file of readdirSync(t.dataDir).filter((f) => f.startsWith('tokenvault.db'))) {
      expect(readFileSync(join(t.dataDir, file)).includes(clientSecret), file).toBe(false);
    }
    expect(t.logs()).not.toContain(clientSecret);
    const events = await t.request('GET', '/v1/admin/audit/events?limit=1000');
    expect(events.text).toContain('oauth_app.create');
    expect(events.text).not.toContain(clientSecret);

    // Its credentials need it for refresh: removal waits for them.
    const refused = await cli(['oauth', 'app', 'rm', 'local', '--json']);
    expect(refused.code).not.toBe(0);
    expect(refused.stdout + refused.stderr).toContain('oauth_app_in_use');
    await t.vault.services.credentials.remove('default', 'local-token');
    expect((await cli(['oauth', 'app', 'rm', 'local'])).code).toBe(0);
    expect((await t.request('GET', '/v1/admin/oauth/apps/local')).status).toBe(404);
  });

  it('adds catalog apps with their settings checked, and generic apps with endpoints by hand', async () => {
    const microsoft = await t.request('POST', '/v1/admin/oauth/apps', {
      body: {
        provider: 'microsoft',
        client_id: 'ms-client',
        client_secret: 's',
        parameters: { tenant: 'contoso.onmicrosoft.com' },
      },
    });
    expect(microsoft.status, microsoft.text).toBe(201);
    expect(microsoft.body).toMatchObject({
      name: 'microsoft',
      parameters: { tenant: 'contoso.onmicrosoft.com' },
    });

    const badTenant = await t.request('POST', '/v1/admin/oauth/apps', {
      body: { provider: 'microsoft', name: 'ms2', client_id: 'x', parameters: { tenant: 'evil.example/x?' } },
    });
    expect(badTenant.status).toBe(400);
    expect(badTenant.text).toContain('tenant');

    const generic = await cli([
      'oauth',
      'app',
      'add',
      'generic',
      '--name',
      'acme',
      '--client-id',
      'acme-client',
      '--authorization-url',
      'https://auth.acme.example/authorize',
      '--token-url',
      'https://auth.acme.example/token',
      '--client-auth',
      'post',
      '--agent-connect',
      '--json',
    ]);
    expect(generic.code, generic.stdout + generic.stderr).toBe(0);
    expect(JSON.parse(generic.stdout)).toMatchObject({
      provider: 'generic',
      client_secret_set: false,
      agent_connect: true,
      endpoints: { token: 'https://auth.acme.example/token' },
    });

    const duplicate = await t.request('POST', '/v1/admin/oauth/apps', {
      body: { provider: 'microsoft', client_id: 'again', parameters: { tenant: 'common' } },
    });
    expect(duplicate.status).toBe(409);
    expect(duplicate.text).toContain('oauth_app_exists');
    const unknown = await t.request('POST', '/v1/admin/oauth/apps', {
      body: { provider: 'nope', client_id: 'x' },
    });
    expect(unknown.text).toContain('oauth_provider_unknown');
    const noIssuer = await t.request('POST', '/v1/admin/oauth/apps', {
      body: { provider: 'oidc', name: 'x', client_id: 'x', issuer: 'http://127.0.0.1:1' },
    });
    expect(noIssuer.status).toBe(502);
    expect(noIssuer.text).toContain('oauth_discovery_failed');
  });
});
