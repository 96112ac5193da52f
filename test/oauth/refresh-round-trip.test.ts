import { generateKeyPair, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { loadProviderCatalog } from '../../src/oauth/provider-catalog.js';
import type { ProviderEntry } from '../../src/oauth/provider-schema.js';
import { createTokenClient, type OAuthClientApp, type TokenClient } from '../../src/oauth/token-client.js';
import { mergeRefreshed, type TokenOutcome, type TokenSet } from '../../src/oauth/token-set.js';
import { startTokenServer, type TokenRequest, type TokenServer } from './provider-token-server.js';

/**
 * Real refresh-token round trips with oauth4webapi against a local server that answers in each
 * provider's documented shape: what the client sends (endpoint, client authentication, parameters)
 * and what the vault keeps of the answer.
 */

const catalog = loadProviderCatalog();
const provider = (name: string): ProviderEntry => catalog.get(name)!;
const now = new Date('2026-03-01T12:00:00.000Z');
const later = (seconds: number) => new Date(now.getTime() + seconds * 1000).toISOString();
const app: OAuthClientApp = { clientId: 'client-1', clientSecret: 's3cret+/=' };

let server: TokenServer;
let client: TokenClient;

const refresh = (name: string, refreshToken: string, extra: Partial<OAuthClientApp> = {}) =>
  client.refresh({ provider: provider(name), app: { ...app, ...extra }, refreshToken });

const tokenOf = (outcome: TokenOutcome): TokenSet => {
  if (!outcome.ok) throw new Error(`expected a token, got ${JSON.stringify(outcome.failure)}`);
  return outcome.token;
};

const only = (): TokenRequest => {
  expect(server.requests).toHaveLength(1);
  return server.requests[0]!;
};

/** `client_secret_basic`: RFC 6749 §2.3.1 form-encodes id and secret before base64. */
const basicCredentials = (request: TokenRequest) => {
  const header = String(request.headers.authorization ?? '');
  expect(header).toMatch(/^Basic /);
  const [id, secret] = Buffer.from(header.slice(6), 'base64').toString('utf8').split(':');
  return { id: decodeURIComponent(id!), secret: decodeURIComponent(secret!.replace(/\+/g, ' ')) };
};

const expectSecretPost = (request: TokenRequest) => {
  expect(request.headers.authorization).toBeUndefined();
  expect(request.form.get('client_id')).toBe('client-1');
  expect(request.form.get('client_secret')).toBe('s3cret+/=');
};

const expectRefreshGrant = (request: TokenRequest, refreshToken: string) => {
  expect(request.method).toBe('POST');
  expect(request.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
  expect(request.headers.accept).toBe('application/json');
  expect(request.form.get('grant_type')).toBe('refresh_token');
  expect(request.form.get('refresh_token')).toBe(refreshToken);
};

/** A provider whose refresh tokens are single-use: each use returns a new one and spends the old. */
const rotatingProvider = (
  first: string,
  answer: (next: string) => object,
  refusal: { status: number; body: object },
) => {
  const live = new Set([first]);
  let n = 0;
  return (request: TokenRequest) => {
    const used = request.form.get('refresh_token') ?? '';
    if (!live.delete(used)) return refusal;
    const next = `${first}-r${++n}`;
    live.add(next);
    return { body: answer(next) };
  };
};

beforeAll(async () => {
  server = await startTokenServer();
  client = createTokenClient({ clock: fixedClock(now), fetch: server.fetch, timeoutMs: 1000 });
});
afterAll(async () => {
  await server?.close();
});
beforeEach(() => {
  server.requests.length = 0;
});

describe('refresh round trips, one provider quirk each', () => {
  it('Google: secret in the body; the answer has no refresh token, so the stored one is kept', async () => {
    server.answer(() => ({
      body: { access_token: 'ya29.new', expires_in: 3599, scope: 'openid email', token_type: 'Bearer' },
    }));
    const stored: TokenSet = {
      accessToken: 'ya29.old',
      refreshToken: '1//0g-keep',
      tokenType: 'Bearer',
      expiresAtAssumed: false,
      extra: {},
      nested: {},
    };
    const merged = mergeRefreshed(stored, tokenOf(await refresh('google', '1//0g-keep')));
    const request = only();
    expect(request.url).toBe('https://oauth2.googleapis.com/token');
    expectRefreshGrant(request, '1//0g-keep');
    expectSecretPost(request);
    expect(merged).toMatchObject({
      accessToken: 'ya29.new',
      refreshToken: '1//0g-keep',
      expiresAt: later(3599),
    });
  });

  it('Microsoft: the tenant from the app settings is in the token URL; the new refresh token replaces the old', async () => {
    server.answer((r) => ({
      body: {
        token_type: 'Bearer',
        scope: 'User.Read offline_access',
        expires_in: '4493',
        ext_expires_in: '4493',
        access_token: 'eyJ0-new',
        refresh_token: `${r.form.get('refresh_token')}-next`,
      },
    }));
    const token = tokenOf(
      await refresh('microsoft', '0.AAA', {
        settings: { parameters: { tenant: 'contoso.onmicrosoft.com' } },
      }),
    );
    expect(only().url).toBe('https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token');
    expect(token).toMatchObject({ refreshToken: '0.AAA-next', expiresAt: later(4493) });
  });

  it('GitHub App: a spent refresh token is refused with HTTP 200, which is still reauth_required', async () => {
    server.answer(() => ({
      body: {
        error: 'bad_refresh_token',
        error_description: 'The refresh token passed is incorrect or expired.',
        error_uri: 'https://docs.github.com',
      },
    }));
    const outcome = await refresh('github-app', 'ghr_spent');
    expect(outcome).toEqual({
      ok: false,
      failure: {
        kind: 'reauth_required',
        code: 'bad_refresh_token',
        description: 'The refresh token passed is incorrect or expired.',
        status: 200,
      },
    });
    expect(only().url).toBe('https://github.com/login/oauth/access_token');
  });

  it('GitHub App: a form-encoded answer (GitHub’s default without Accept: JSON) is read too', async () => {
    server.answer(() => ({
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: 'access_token=ghu_new&expires_in=28800&refresh_token=ghr_new&refresh_token_expires_in=15897600&scope=&token_type=bearer',
    }));
    const token = tokenOf(await refresh('github-app', 'ghr_old'));
    expect(token).toMatchObject({
      accessToken: 'ghu_new',
      refreshToken: 'ghr_new',
      tokenType: 'Bearer',
      expiresAt: later(28800),
      refreshTokenExpiresAt: later(15897600),
    });
  });

  it('Slack: single-use refresh tokens rotate through three refreshes; the spent one is refused with HTTP 200', async () => {
    server.answer(
      rotatingProvider(
        'xoxe-1-a',
        (next) => ({
          ok: true,
          app_id: 'A1',
          access_token: `xoxe.xoxb-1-${next}`,
          expires_in: 43200,
          refresh_token: next,
          token_type: 'bot',
          scope: 'chat:write,channels:read',
          bot_user_id: 'U0BOT',
          team: { id: 'T1', name: 'Team' },
          enterprise: null,
          is_enterprise_install: false,
        }),
        { status: 200, body: { ok: false, error: 'invalid_refresh_token' } },
      ),
    );
    let stored: TokenSet = {
      accessToken: 'xoxe.xoxb-1-0',
      refreshToken: 'xoxe-1-a',
      tokenType: 'Bearer',
      expiresAtAssumed: false,
      extra: { teamId: 'T1' },
      nested: { userToken: { accessToken: 'xoxe.xoxp-1-u', tokenType: 'Bearer', expiresAtAssumed: false } },
    };
    for (let i = 0; i < 3; i += 1)
      stored = mergeRefreshed(stored, tokenOf(await refresh('slack', stored.refreshToken!)));
    expect(stored).toMatchObject({
      refreshToken: 'xoxe-1-a-r3',
      tokenType: 'Bearer',
      expiresAt: later(43200),
      scopes: ['chat:write', 'channels:read'],
      extra: { teamId: 'T1', botUserId: 'U0BOT' },
    });
    expect(stored.nested.userToken?.accessToken).toBe('xoxe.xoxp-1-u');
    expect(server.requests.filter((r) => r.url !== 'https://slack.com/api/oauth.v2.access')).toEqual([]);

    const reused = await refresh('slack', 'xoxe-1-a-r2');
    expect(reused).toEqual({
      ok: false,
      failure: { kind: 'reauth_required', code: 'invalid_refresh_token', status: 200 },
    });
  });

  it('Slack: the user token refreshes with its own refresh token and lands back under authed_user', async () => {
    server.answer(() => ({
      body: {
        ok: true,
        access_token: 'xoxe.xoxp-1-new',
        token_type: 'user',
        expires_in: 43200,
        refresh_token: 'xoxe-1-user-2',
        scope: 'search:read',
      },
    }));
    const stored: TokenSet = {
      accessToken: 'xoxe.xoxb-1-bot',
      refreshToken: 'xoxe-1-bot',
      tokenType: 'Bearer',
      expiresAtAssumed: false,
      extra: { teamId: 'T1' },
      nested: {
        userToken: {
          accessToken: 'xoxe.xoxp-1-old',
          refreshToken: 'xoxe-1-user',
          tokenType: 'Bearer',
          expiresAtAssumed: false,
        },
      },
    };
    const fresh = tokenOf(await refresh('slack', stored.nested.userToken!.refreshToken!));
    expect(only().form.get('refresh_token')).toBe('xoxe-1-user');
    const merged = mergeRefreshed(stored, fresh, 'userToken');
    expect(merged.accessToken).toBe('xoxe.xoxb-1-bot');
    expect(merged.refreshToken).toBe('xoxe-1-bot');
    expect(merged.nested.userToken).toEqual({
      accessToken: 'xoxe.xoxp-1-new',
      refreshToken: 'xoxe-1-user-2',
      tokenType: 'Bearer',
      expiresAt: later(43200),
      expiresAtAssumed: false,
      scopes: ['search:read'],
    });
  });

  it('Slack: why the raw answer is normalised here — oauth4webapi’s own processing rejects it', async () => {
    server.answer(() => ({
      body: {
        ok: true,
        access_token: 'xoxe.xoxb-1-x',
        expires_in: 43200,
        refresh_token: 'xoxe-1-y',
        token_type: 'bot',
      },
    }));
    const as = { issuer: 'https://slack.com', token_endpoint: 'https://slack.com/api/oauth.v2.access' };
    const response = await oauth.refreshTokenGrantRequest(
      as,
      { client_id: 'client-1' },
      oauth.ClientSecretPost('s'),
      'r',
      {
        [oauth.customFetch]: server.fetch,
      },
    );
    await expect(oauth.processRefreshTokenResponse(as, { client_id: 'client-1' }, response)).rejects.toThrow(
      /unsupported `token_type` value/,
    );
  });

  it('Salesforce: no expires_in, so the lifetime is assumed; the instance URL comes along', async () => {
    server.answer(() => ({
      body: {
        access_token: '00Dxx!AR8',
        signature: 'c2lnbmF0dXJl',
        scope: 'refresh_token api',
        instance_url: 'https://acme.my.salesforce.com',
        id: 'https://login.salesforce.com/id/00Dxx/005xx',
        token_type: 'Bearer',
        issued_at: '1772366400000',
      },
    }));
    const token = tokenOf(
      await refresh('salesforce', '5Aep', {
        settings: { parameters: { loginHost: 'acme.my.salesforce.com' } },
      }),
    );
    expect(only().url).toBe('https://acme.my.salesforce.com/services/oauth2/token');
    expectSecretPost(only());
    expect(token).toMatchObject({
      expiresAt: later(3600),
      expiresAtAssumed: true,
      extra: { instanceUrl: 'https://acme.my.salesforce.com' },
    });
    expect(token.refreshToken).toBeUndefined();
  });

  it('HubSpot: its own error shape ({status, message}) for a revoked refresh token', async () => {
    server.answer(() => ({
      status: 400,
      body: {
        status: 'BAD_REFRESH_TOKEN',
        message: 'missing or unknown refresh token',
        correlationId: 'c-1',
      },
    }));
    const outcome = await refresh('hubspot', 'na1-revoked');
    expect(outcome).toMatchObject({
      ok: false,
      failure: { kind: 'reauth_required', code: 'BAD_REFRESH_TOKEN' },
    });
  });

  it('Dropbox: HTTP Basic client authentication; a refresh never returns a refresh token', async () => {
    server.answer(() => ({ body: { access_token: 'sl.new', expires_in: 14400, token_type: 'bearer' } }));
    const token = tokenOf(await refresh('dropbox', 'dbx-refresh'));
    const request = only();
    expect(basicCredentials(request)).toEqual({ id: 'client-1', secret: 's3cret+/=' });
    expect(request.form.get('client_secret')).toBeNull();
    expect(token).toMatchObject({ accessToken: 'sl.new', expiresAt: later(14400) });
  });

  it('Zoom: "Invalid Token!" under invalid_request means reconnect; Basic auth', async () => {
    server.answer(() => ({ status: 400, body: { reason: 'Invalid Token!', error: 'invalid_request' } }));
    const outcome = await refresh('zoom', 'zoom-spent');
    expect(basicCredentials(only()).id).toBe('client-1');
    expect(outcome).toMatchObject({
      ok: false,
      failure: { kind: 'reauth_required', description: 'Invalid Token!' },
    });
  });

  it('Figma: refreshes at its own refresh endpoint', async () => {
    server.answer(() => ({ body: { access_token: 'figu_new', expires_in: 7776000 } }));
    const token = tokenOf(await refresh('figma', 'figr_1'));
    expect(only().url).toBe('https://api.figma.com/v1/oauth/refresh');
    expect(token).toMatchObject({ tokenType: 'Bearer', expiresAt: later(7776000) });
  });

  it('Zendesk: the subdomain is in the host; no expires_in, so a day is assumed', async () => {
    server.answer(() => ({ body: { access_token: 'zd-new', token_type: 'bearer', scope: 'read write' } }));
    const token = tokenOf(
      await refresh('zendesk', 'zd-refresh', { settings: { parameters: { subdomain: 'acme' } } }),
    );
    expect(only().url).toBe('https://acme.zendesk.com/oauth/tokens');
    expect(token).toMatchObject({
      expiresAt: later(86400),
      expiresAtAssumed: true,
      scopes: ['read', 'write'],
    });
  });

  it('Atlassian: rotating refresh tokens; reusing a replaced one is invalid_grant (403)', async () => {
    server.answer(
      rotatingProvider(
        'atl-1',
        (next) => ({
          access_token: `at-${next}`,
          expires_in: 3600,
          token_type: 'Bearer',
          refresh_token: next,
          scope: 'read:jira-work offline_access',
        }),
        {
          status: 403,
          body: { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' },
        },
      ),
    );
    const first = tokenOf(await refresh('atlassian', 'atl-1'));
    const second = tokenOf(await refresh('atlassian', first.refreshToken!));
    expect(second.refreshToken).toBe('atl-1-r2');
    expect(await refresh('atlassian', 'atl-1')).toMatchObject({
      ok: false,
      failure: { kind: 'reauth_required', code: 'invalid_grant', status: 403 },
    });
  });

  it('Notion: HTTP Basic client authentication; a token without expiry, workspace ids as extras', async () => {
    server.answer(() => ({
      body: {
        access_token: 'ntn_new',
        token_type: 'bearer',
        refresh_token: 'ntn_r2',
        bot_id: 'bot-1',
        workspace_id: 'ws-1',
        workspace_name: 'Acme',
        owner: { type: 'user', user: { id: 'u1' } },
      },
    }));
    const token = tokenOf(await refresh('notion', 'ntn_r1'));
    expect(only().url).toBe('https://api.notion.com/v1/oauth/token');
    expect(basicCredentials(only())).toEqual({ id: 'client-1', secret: 's3cret+/=' });
    expect(token).toMatchObject({
      refreshToken: 'ntn_r2',
      expiresAtAssumed: false,
      extra: { botId: 'bot-1', workspaceId: 'ws-1', workspaceName: 'Acme' },
    });
    expect(token.expiresAt).toBeUndefined();
  });

  it('Asana and Discord: the user under data, the guild of a bot install', async () => {
    server.answer(() => ({
      body: {
        access_token: 'asana-new',
        expires_in: 3600,
        token_type: 'bearer',
        data: { id: 4673218951, gid: '4673218951', name: 'Greg Sanchez', email: 'g@example.com' },
      },
    }));
    expect(tokenOf(await refresh('asana', 'asana-r')).extra).toEqual({
      userGid: '4673218951',
      userName: 'Greg Sanchez',
    });
    expect(server.requests[0]!.url).toBe('https://app.asana.com/-/oauth_token');
    server.answer(() => ({
      body: {
        access_token: 'discord-new',
        token_type: 'Bearer',
        expires_in: 604800,
        refresh_token: 'discord-r2',
        scope: 'identify guilds',
        guild: { id: '290926798626357999' },
      },
    }));
    const discord = tokenOf(await refresh('discord', 'discord-r1'));
    expect(basicCredentials(server.requests[1]!).id).toBe('client-1');
    expect(discord).toMatchObject({
      refreshToken: 'discord-r2',
      expiresAt: later(604800),
      scopes: ['identify', 'guilds'],
      extra: { guildId: '290926798626357999' },
    });
  });

  it('Linear: granted scopes as a JSON array', async () => {
    server.answer(() => ({
      body: {
        access_token: 'lin_oauth_new',
        token_type: 'Bearer',
        expires_in: 86399,
        scope: ['read', 'write'],
      },
    }));
    expect(tokenOf(await refresh('linear', 'lin_r')).scopes).toEqual(['read', 'write']);
  });

  it('GitLab: a self-managed host; each refresh returns a new refresh token', async () => {
    server.answer(() => ({
      body: {
        access_token: 'gl-new',
        token_type: 'Bearer',
        expires_in: 7200,
        refresh_token: 'gl-r2',
        created_at: 1772366400,
      },
    }));
    const token = tokenOf(
      await refresh('gitlab', 'gl-r1', { settings: { parameters: { host: 'git.example.org' } } }),
    );
    expect(only().url).toBe('https://git.example.org/oauth/token');
    expect(token).toMatchObject({ refreshToken: 'gl-r2', extra: { createdAt: 1772366400 } });
  });
});

describe('refresh round trips that fail for a while', () => {
  it('429 with Retry-After and 503 are retryable', async () => {
    server.answer(() => ({ status: 429, headers: { 'retry-after': '17' }, body: { error: 'rate_limited' } }));
    expect(await refresh('google', 'r')).toEqual({
      ok: false,
      failure: { kind: 'retryable', code: 'rate_limited', status: 429, retryAfterSeconds: 17 },
    });
    server.answer(() => ({ status: 503, body: '<html>Service Unavailable</html>' }));
    expect(await refresh('google', 'r')).toMatchObject({
      ok: false,
      failure: { kind: 'retryable', code: 'http_503' },
    });
  });

  it('a token endpoint that does not answer in time is retryable (timeout)', async () => {
    server.answer(() => ({ delayMs: 1500, body: { access_token: 'late', token_type: 'Bearer' } }));
    expect(await refresh('google', 'r')).toMatchObject({
      ok: false,
      failure: { kind: 'retryable', code: 'timeout', status: 0 },
    });
  });

  it('a token endpoint that cannot be reached is retryable (network_error)', async () => {
    const offline = createTokenClient({
      clock: fixedClock(now),
      fetch: (input, init) => fetch(String(input).replace(/^https:\/\/[^/]+/, 'http://127.0.0.1:9'), init),
    });
    const outcome = await offline.refresh({ provider: provider('google'), app, refreshToken: 'r' });
    expect(outcome).toMatchObject({
      ok: false,
      failure: { kind: 'retryable', code: 'network_error', status: 0 },
    });
  });
});

describe('generic providers and private_key_jwt', () => {
  it('signs a client assertion for the token endpoint when the app authenticates with a key', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    server.answer(() => ({ body: { access_token: 'generic-at', token_type: 'Bearer', expires_in: 600 } }));
    const token = tokenOf(
      await client.refresh({
        provider: provider('generic'),
        app: {
          clientId: 'client-1',
          clientAuth: 'private_key_jwt',
          privateKey: { key: privateKey, kid: 'k1' },
          settings: { endpoints: { token: 'https://as.example/oauth/token' } },
        },
        refreshToken: 'g-r',
      }),
    );
    const request = only();
    expect(request.url).toBe('https://as.example/oauth/token');
    expect(request.form.get('client_assertion_type')).toBe(
      'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    );
    const { payload } = await jwtVerify(request.form.get('client_assertion')!, publicKey, {
      audience: 'https://as.example/oauth/token',
      issuer: 'client-1',
      subject: 'client-1',
    });
    expect(payload.jti).toBeTruthy();
    expect(token.expiresAt).toBe(later(600));
  });
});
