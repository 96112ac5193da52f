import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { loadProviderCatalog } from '../../src/oauth/provider-catalog.js';
import type { ResolvedOAuthApp } from '../../src/oauth/refresh/refresh-types.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import {
  startTokenServer,
  type TokenAnswer,
  type TokenRequest,
  type TokenServer,
} from './provider-token-server.js';
import { admin } from './refresh-fixture.js';

/**
 * Issue 13 item 7 for catalog providers: a retrieval with a narrower `?scope=` sends a refresh with
 * that `scope` to providers whose catalog entry declares narrower-scope refresh (Google, Microsoft
 * identity platform v2, Dropbox), each answered by a local server in that provider's documented
 * shape, and is refused with `scope_narrowing_unsupported` (nothing sent) for one that does not.
 */

const catalog = loadProviderCatalog();
const app = { clientId: 'client-1', clientSecret: 'client-secret-1' };

/** Each provider's token endpoint: the narrowed token names the scopes it was asked for. */
const answers: Record<string, (request: TokenRequest) => TokenAnswer> = {
  'https://oauth2.googleapis.com/token': (r) => ({
    body: {
      access_token: `ya29.narrow-${r.form.get('scope')}`,
      expires_in: 3599,
      scope: r.form.get('scope'),
      token_type: 'Bearer',
    },
  }),
  'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token': (r) => ({
    body: {
      token_type: 'Bearer',
      scope: r.form.get('scope'),
      expires_in: 4493,
      ext_expires_in: 4493,
      access_token: `eyJ0.narrow-${r.form.get('scope')}`,
      refresh_token: `${r.form.get('refresh_token')}-next`,
    },
  }),
  'https://api.dropboxapi.com/oauth2/token': (r) => ({
    body: {
      access_token: `sl.narrow-${r.form.get('scope')}`,
      expires_in: 14400,
      token_type: 'bearer',
      scope: r.form.get('scope'),
    },
  }),
};

describe('narrower-scope retrievals for catalog providers', () => {
  let server: TokenServer;
  let t: TestVault;
  let apiKey: string;
  const apps = new Map<string, ResolvedOAuthApp>();

  const add = async (name: string, provider: string, scopes: string[], settings = {}) => {
    const created = await admin(t, 'POST', '/v1/admin/credentials', {
      name,
      type: 'oauth2',
      scopes,
      secret: { access_token: `${name}-full`, refresh_token: `${name}-refresh` },
    });
    apps.set(created.id as string, {
      appId: `${provider}-app`,
      provider: catalog.get(provider)!,
      app: { ...app, settings },
    });
    await admin(t, 'POST', '/v1/admin/grants', {
      agent: 'agent-9',
      credential: name,
      reveal: true,
      until_revoked: true,
    });
  };
  const retrieve = (name: string, scope: string) =>
    t.request('GET', `/v1/agents/agent-9/credentials/${name}?scope=${encodeURIComponent(scope)}`, {
      token: apiKey,
    });
  const tokenOf = (answer: { body: unknown }) => (answer.body as { access_token: string }).access_token;

  beforeAll(async () => {
    server = await startTokenServer();
    server.answer(
      (request) => answers[request.url]?.(request) ?? { status: 404, body: { error: 'no_route' } },
    );
    t = await startTestVault({
      clock: fixedClock(new Date()),
      oauthRefresh: {
        resolveApp: async (_namespace, credentialId) => apps.get(credentialId),
        tokenClient: { fetch: server.fetch },
        scheduler: { pollMs: 3_600_000 },
      },
    });
    await admin(t, 'POST', '/v1/admin/agents', { name: 'agent-9' });
    apiKey = (await admin(t, 'POST', '/v1/admin/agents/agent-9/keys', { name: 'key' })).api_key as string;
    await add('gmail', 'google', [
      'https://www.googleapis.com/auth/gmail.readonly',
      'https://www.googleapis.com/auth/calendar',
    ]);
    await add('graph', 'microsoft', ['User.Read', 'Mail.Read', 'offline_access'], {
      parameters: { tenant: 'contoso.onmicrosoft.com' },
    });
    await add('box', 'dropbox', ['files.content.read', 'files.content.write', 'account_info.read']);
    await add('chat', 'slack', ['chat:write', 'channels:read']);
  }, 30_000);
  afterAll(async () => {
    await t?.stop();
    await server?.close();
  });

  const narrowed = async (name: string, scope: string, url: string) => {
    server.requests.length = 0;
    const answer = await retrieve(name, scope);
    expect(answer.status, answer.text).toBe(200);
    expect(server.requests).toHaveLength(1);
    const [request] = server.requests;
    expect(request!.url).toBe(url);
    expect(request!.form.get('grant_type')).toBe('refresh_token');
    expect(request!.form.get('refresh_token')).toBe(`${name}-refresh`);
    return { answer, request: request! };
  };

  it('Google: a refresh with the narrower scope; the token for only that scope is handed out', async () => {
    const scope = 'https://www.googleapis.com/auth/gmail.readonly';
    const { answer, request } = await narrowed('gmail', scope, 'https://oauth2.googleapis.com/token');
    expect(request.form.get('scope')).toBe(scope);
    expect(tokenOf(answer)).toBe(`ya29.narrow-${scope}`);
    // The credential's own token is untouched, and its refresh token (Google does not rotate) kept.
    const stored = await t.vault.services.credentials.readSecret('default', 'gmail');
    expect(stored.secret).toMatchObject({ access_token: 'gmail-full', refresh_token: 'gmail-refresh' });
  });

  it('Microsoft: the tenant’s v2 token endpoint, scopes space-separated; the rotated refresh token is stored', async () => {
    const { answer, request } = await narrowed(
      'graph',
      'User.Read Mail.Read',
      'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
    );
    expect(request.form.get('scope')).toBe('Mail.Read User.Read');
    expect(tokenOf(answer)).toBe('eyJ0.narrow-Mail.Read User.Read');
    const stored = await t.vault.services.credentials.readSecret('default', 'graph');
    expect(stored.secret).toMatchObject({ access_token: 'graph-full', refresh_token: 'graph-refresh-next' });
  });

  it('Dropbox: downscoping on refresh', async () => {
    const { answer, request } = await narrowed(
      'box',
      'files.content.read',
      'https://api.dropboxapi.com/oauth2/token',
    );
    expect(request.form.get('scope')).toBe('files.content.read');
    expect(tokenOf(answer)).toBe('sl.narrow-files.content.read');
  });

  it('Slack, which documents no narrower refresh: scope_narrowing_unsupported, nothing sent', async () => {
    server.requests.length = 0;
    const answer = await retrieve('chat', 'chat:write');
    expect(answer.status).toBe(409);
    expect((answer.body as { error: { code: string } }).error.code).toBe('scope_narrowing_unsupported');
    expect(server.requests).toHaveLength(0);
  });
});
