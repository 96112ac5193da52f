import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { loadProviderCatalog } from '../../src/oauth/provider-catalog.js';
import type { ResolvedOAuthApp } from '../../src/oauth/refresh/refresh-types.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { sqliteFiles } from '../contracts/canary-contract.js';
import {
  admin,
  connect,
  localApp,
  oauthCredential,
  recordingEvents,
  startCallbackServer,
} from './refresh-fixture.js';

/**
 * Issue 13 items 7 and 8, and the proxy's one refresh on a 401, against oidc-provider: what the
 * provider's introspection says of the tokens the vault hands out, keeps or revokes.
 */

describe('downscoped tokens, revocation on removal, and the proxy 401', () => {
  let op: TestOAuthServer;
  let callback: Awaited<ReturnType<typeof startCallbackServer>>;
  let api: { url: string; stop(): Promise<void> };
  let t: TestVault;
  let apiKey: string;
  const clock = fixedClock(new Date());
  /** Credentials whose app is of a provider that cannot narrow scopes (a catalog entry without the flag). */
  const slackLike = new Set<string>();
  /** Tokens the upstream API refuses although the provider still says they are active. */
  const refusedByApi = new Set<string>();
  /** Credentials whose app has no revocation endpoint. */
  const noRevocation = new Set<string>();

  const resolveApp = async (_namespace: string, credentialId: string): Promise<ResolvedOAuthApp> => {
    const app = localApp(op);
    if (slackLike.has(credentialId)) return { ...app, provider: loadProviderCatalog().get('notion')! };
    if (noRevocation.has(credentialId)) {
      return { ...app, app: { ...app.app, settings: { endpoints: { token: `${op.issuer}/token` } } } };
    }
    return app;
  };
  const refreshes = () => op.tokenRequests('refresh_token');
  const idOf = async (name: string) => (await t.vault.services.credentials.get('default', name)).id;
  /** Every token the vault has held or handed out, for the canary check at the end. */
  const seen = new Set<string>();
  const errorBodies: string[] = [];
  const stored = async (name: string) => {
    const { secret } = await t.vault.services.credentials.readSecret('default', name);
    for (const value of [secret.access_token, secret.refresh_token]) if (value) seen.add(value);
    return secret;
  };

  beforeAll(async () => {
    callback = await startCallbackServer();
    op = await startOAuthServer({ accessTokenTtl: 300, redirectUris: [callback.url] });
    // An upstream API that accepts a bearer only while the provider's introspection says it is active.
    const server = createServer((request, response) => {
      const token = (request.headers.authorization ?? '').replace(/^Bearer /, '');
      void op.introspect(token).then((info) => {
        const ok = info.active === true && !refusedByApi.has(token);
        response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ active: info.active }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    api = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
    t = await startTestVault({
      clock,
      settings: { outboundAllow: '127.0.0.1' },
      oauthRefresh: {
        resolveApp,
        events: recordingEvents(),
        tokenClient: { allowHttp: true },
        scheduler: { pollMs: 3_600_000 },
      },
    });
    apiKey = (await oauthCredential(t, 'mail', await connect(op, callback.url))).apiKey!;
    await t.vault.services.oauthRefresh.scheduler.adopt();
    await t.vault.services.oauthRefresh.scheduler.tick();
  }, 30_000);
  afterAll(async () => {
    await t?.stop();
    await api?.stop();
    await op?.stop();
    await callback?.stop();
  });

  const retrieve = (name: string, scope?: string) =>
    t.request(
      'GET',
      `/v1/agents/agent-42/credentials/${name}${scope ? `?scope=${encodeURIComponent(scope)}` : ''}`,
      {
        token: apiKey,
      },
    );
  const tokenOf = (answer: { body: unknown }) => {
    const token = (answer.body as { access_token: string }).access_token;
    seen.add(token);
    return token;
  };

  it('a narrower ?scope= returns a token the provider reports with only those scopes, cached per scope set', async () => {
    const before = refreshes();
    const narrow = await retrieve('mail', 'api:read');
    expect(narrow.status, narrow.text).toBe(200);
    const info = await op.introspect(tokenOf(narrow));
    expect(info.active).toBe(true);
    expect(String(info.scope).split(' ')).toEqual(['api:read']);
    expect(refreshes() - before).toBe(1);
    // Cached for that scope set: no second request.
    expect(tokenOf(await retrieve('mail', 'api:read'))).toBe(tokenOf(narrow));
    expect(refreshes() - before).toBe(1);
    // The credential's own token keeps every scope, and still works (the refresh token rotated under it).
    const full = await retrieve('mail');
    expect(tokenOf(full)).not.toBe(tokenOf(narrow));
    const fullInfo = await op.introspect(tokenOf(full));
    expect(fullInfo.active).toBe(true);
    expect(String(fullInfo.scope).split(' ').sort()).toEqual(['api:read', 'api:write']);
    expect((await op.introspect((await stored('mail')).refresh_token!)).active).toBe(true);
  });

  it('a provider that cannot narrow scopes answers scope_narrowing_unsupported', async () => {
    await oauthCredential(t, 'wiki', await connect(op, callback.url, 'erin'));
    slackLike.add(await idOf('wiki'));
    const answer = await retrieve('wiki', 'api:read');
    errorBodies.push(answer.text);
    expect(answer.status).toBe(409);
    expect((answer.body as { error: { code: string } }).error.code).toBe('scope_narrowing_unsupported');
    expect((await retrieve('wiki')).status).toBe(200);
  });

  it('the proxy refreshes once and retries once when the upstream answers 401', async () => {
    await admin(t, 'PATCH', '/v1/admin/credentials/mail', {
      base_url: api.url,
      allowed_hosts: [new URL(api.url).host],
    });
    const { access_token } = await stored('mail');
    // The API stops accepting the token early (the vault's clock says it is still good). (Revoking
    // it at oidc-provider would end the whole grant, refresh token included.)
    refusedByApi.add(access_token!);
    const before = refreshes();
    const proxied = await t.request('GET', '/v1/proxy/mail/me', { token: apiKey });
    expect(proxied.status, proxied.text).toBe(200);
    expect(refreshes() - before).toBe(1);
    expect((await stored('mail')).access_token).not.toBe(access_token);
  });

  it('removing an OAuth credential revokes its tokens at the provider (RFC 7009)', async () => {
    const secret = await stored('mail');
    expect((await op.introspect(secret.refresh_token!)).active).toBe(true);
    const removed = await admin(t, 'DELETE', '/v1/admin/credentials/mail');
    expect(removed).toEqual({ deleted: 'mail', revocation: { status: 'revoked', tokens: 2 } });
    expect((await op.introspect(secret.refresh_token!)).active).toBe(false);
    expect((await op.introspect(secret.access_token!)).active).toBe(false);
  });

  it('says so when the provider has no revocation endpoint', async () => {
    await oauthCredential(t, 'notes', await connect(op, callback.url, 'frank'));
    noRevocation.add(await idOf('notes'));
    const secret = await stored('notes');
    const removed = await admin(t, 'DELETE', '/v1/admin/credentials/notes');
    expect(removed).toEqual({ deleted: 'notes', revocation: { status: 'no_endpoint' } });
    expect((await op.introspect(secret.refresh_token!)).active).toBe(true);
    // A credential that is not OAuth is removed as before.
    await admin(t, 'POST', '/v1/admin/credentials', {
      name: 'plain',
      type: 'api_key',
      secret: { api_key: 'k-1' },
    });
    expect((await t.request('DELETE', '/v1/admin/credentials/plain')).status).toBe(204);
  });

  it('no token, refresh token or client secret reaches the logs, the audit log, an error body or the database', async () => {
    await oauthCredential(t, 'chat', await connect(op, callback.url, 'gina'));
    await t.vault.services.oauthRefresh.scheduler.adopt();
    await t.vault.services.oauthRefresh.scheduler.tick();
    await stored('chat');
    // A refusal at the provider, so its error path is covered too.
    op.failTokenRequests({
      grantType: 'refresh_token',
      status: 400,
      times: 1,
      body: { error: 'invalid_grant' },
    });
    clock.advance(301_000);
    const refused = await retrieve('chat');
    errorBodies.push(refused.text);
    expect(refused.status).toBe(409);
    const audit = await t.request('GET', '/v1/admin/audit/events?limit=1000');
    const database = sqliteFiles(t).toString('latin1');
    const secrets = [...seen, op.client.client_secret];
    expect(seen.size).toBeGreaterThan(8);
    for (const secret of secrets) {
      for (const [where, text] of [
        ['logs', t.logs()],
        ['audit', audit.text],
        ['errors', errorBodies.join('\n')],
        ['database', database],
      ] as const) {
        expect(text.includes(secret), `${where} contains a secret (${secret.slice(0, 6)}…)`).toBe(false);
      }
    }
  });
});
