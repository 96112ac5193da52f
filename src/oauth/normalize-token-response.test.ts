import { describe, expect, it } from 'vitest';
import { classifyError, normalizeTokenResponse, retryAfterSeconds } from './normalize-token-response.js';
import { loadProviderCatalog } from './provider-catalog.js';
import { mergeRefreshed, type TokenFailure, type TokenSet } from './token-set.js';

/**
 * Each provider's documented token-endpoint answers (values shortened), through the catalog entry that
 * describes them.
 */

const catalog = loadProviderCatalog();
const now = new Date('2026-01-01T00:00:00.000Z');
const later = (seconds: number) => new Date(now.getTime() + seconds * 1000).toISOString();

const normalize = (provider: string, body: unknown, status = 200, retryAfter?: string) => {
  const entry = catalog.get(provider);
  if (!entry) throw new Error(`no ${provider}`);
  return normalizeTokenResponse(entry, { status, body, retryAfter: retryAfter ?? null }, now);
};
const token = (provider: string, body: unknown): TokenSet => {
  const outcome = normalize(provider, body);
  if (!outcome.ok) throw new Error(`expected a token, got ${JSON.stringify(outcome.failure)}`);
  return outcome.token;
};
const failure = (provider: string, body: unknown, status = 400, retryAfter?: string): TokenFailure => {
  const outcome = normalize(provider, body, status, retryAfter);
  if (outcome.ok) throw new Error('expected a failure');
  return outcome.failure;
};

describe('normalising successful answers', () => {
  it('Google: lifetime, space-separated scopes, ID token; the refresh answer has no refresh token', () => {
    const first = token('google', {
      access_token: 'ya29.a0Af',
      expires_in: 3599,
      refresh_token: '1//0gLx',
      scope: 'openid https://www.googleapis.com/auth/userinfo.email',
      token_type: 'Bearer',
      id_token: 'eyJhbGciOi.x.y',
    });
    expect(first).toEqual({
      accessToken: 'ya29.a0Af',
      refreshToken: '1//0gLx',
      tokenType: 'Bearer',
      expiresAt: later(3599),
      expiresAtAssumed: false,
      scopes: ['openid', 'https://www.googleapis.com/auth/userinfo.email'],
      idToken: 'eyJhbGciOi.x.y',
      extra: {},
      nested: {},
    });
    const refreshed = token('google', { access_token: 'ya29.b1', expires_in: 3599, token_type: 'Bearer' });
    const merged = mergeRefreshed(first, refreshed);
    expect(merged.accessToken).toBe('ya29.b1');
    expect(merged.refreshToken).toBe('1//0gLx');
    expect(merged.idToken).toBe('eyJhbGciOi.x.y');
    expect(merged.scopes).toEqual(first.scopes);
  });

  it('Microsoft: expires_in sent as a string still counts', () => {
    const t = token('microsoft', {
      token_type: 'Bearer',
      scope: 'User.Read profile openid email',
      expires_in: '3599',
      ext_expires_in: '3599',
      access_token: 'eyJ0eXAi',
      refresh_token: '0.AAAA',
    });
    expect(t.expiresAt).toBe(later(3599));
    expect(t.expiresAtAssumed).toBe(false);
  });

  it('GitHub OAuth app: a token that never expires, lowercase bearer, comma-separated scopes', () => {
    const t = token('github', { access_token: 'gho_16C7e42F', token_type: 'bearer', scope: 'repo,gist' });
    expect(t).toEqual({
      accessToken: 'gho_16C7e42F',
      tokenType: 'Bearer',
      expiresAtAssumed: false,
      scopes: ['repo', 'gist'],
      extra: {},
      nested: {},
    });
  });

  it('GitHub App user token: 8 h access token and a refresh token with its own lifetime', () => {
    const t = token('github-app', {
      access_token: 'ghu_16C7e42F',
      expires_in: 28800,
      refresh_token: 'ghr_1B4a2e77',
      refresh_token_expires_in: 15897600,
      scope: '',
      token_type: 'bearer',
    });
    expect(t.expiresAt).toBe(later(28800));
    expect(t.refreshTokenExpiresAt).toBe(later(15897600));
    expect(t.scopes).toEqual([]);
  });

  it('Slack v2: bot token on top, the user token nested, Bearer whatever token_type says', () => {
    const t = token('slack', {
      ok: true,
      access_token: 'xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy',
      token_type: 'bot',
      scope: 'commands,incoming-webhook',
      bot_user_id: 'U0KRQLJ9H',
      app_id: 'A0KRD7HC3',
      team: { name: 'Slack Softball Team', id: 'T9TK3CUKW' },
      enterprise: { name: 'slack-sports', id: 'E12345678' },
      authed_user: { id: 'U1234', scope: 'chat:write', access_token: 'xoxp-1234', token_type: 'user' },
    });
    expect(t.accessToken).toMatch(/^xoxb-/);
    expect(t.tokenType).toBe('Bearer');
    expect(t.scopes).toEqual(['commands', 'incoming-webhook']);
    expect(t.expiresAt).toBe(later(43200));
    expect(t.expiresAtAssumed).toBe(true);
    expect(t.nested).toEqual({
      userToken: {
        accessToken: 'xoxp-1234',
        tokenType: 'Bearer',
        scopes: ['chat:write'],
        expiresAt: later(43200),
        expiresAtAssumed: true,
      },
    });
    expect(t.extra).toEqual({
      teamId: 'T9TK3CUKW',
      teamName: 'Slack Softball Team',
      enterpriseId: 'E12345678',
      botUserId: 'U0KRQLJ9H',
      appId: 'A0KRD7HC3',
      authedUserId: 'U1234',
    });
  });

  it('Slack with rotation: a 12 h token and a new refresh token; the merge keeps the user token', () => {
    const installed = token('slack', {
      ok: true,
      access_token: 'xoxe.xoxb-1-a',
      refresh_token: 'xoxe-1-first',
      expires_in: 43200,
      token_type: 'bot',
      team: { id: 'T1' },
      authed_user: {
        id: 'U1',
        access_token: 'xoxe.xoxp-1-u',
        refresh_token: 'xoxe-1-user',
        expires_in: 43200,
      },
    });
    const refreshed = token('slack', {
      ok: true,
      access_token: 'xoxe.xoxb-1-b',
      refresh_token: 'xoxe-1-second',
      expires_in: 43200,
      token_type: 'bot',
    });
    expect(refreshed.expiresAtAssumed).toBe(false);
    const merged = mergeRefreshed(installed, refreshed);
    expect(merged.refreshToken).toBe('xoxe-1-second');
    expect(merged.nested.userToken?.refreshToken).toBe('xoxe-1-user');
    expect(merged.extra.teamId).toBe('T1');
  });

  it('Slack user-only install: the nested user token becomes the primary one', () => {
    const t = token('slack', {
      ok: true,
      app_id: 'A0KRD7HC3',
      authed_user: { id: 'U1234', scope: 'search:read', access_token: 'xoxp-only', token_type: 'user' },
      team: { id: 'T9TK3CUKW' },
      enterprise: null,
    });
    expect(t.accessToken).toBe('xoxp-only');
    expect(t.scopes).toEqual(['search:read']);
    expect(t.nested).toEqual({});
  });

  it('Salesforce: no expires_in, so the lifetime is assumed; the instance URL is kept', () => {
    const t = token('salesforce', {
      access_token: '00Dxx0000001gPL!AR8AQJXg',
      signature: 'CMJ4l+CCaPQiKjoOEwEig9H4wqhpuLSk4J2urAe+fVg=',
      scope: 'refresh_token api',
      instance_url: 'https://acme.my.salesforce.com',
      id: 'https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS',
      token_type: 'Bearer',
      issued_at: '1278448384422',
      refresh_token: '5Aep861TSESvWeug_x',
    });
    expect(t.expiresAt).toBe(later(3600));
    expect(t.expiresAtAssumed).toBe(true);
    expect(t.extra).toEqual({
      instanceUrl: 'https://acme.my.salesforce.com',
      identityUrl: 'https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS',
      issuedAt: '1278448384422',
    });
  });

  it('Zendesk classic token: no expiry and no refresh token; a day is assumed', () => {
    const t = token('zendesk', {
      access_token: 'gErypPlm4dOVgGRvA1ZzMH5MQ3nLo8bo',
      token_type: 'bearer',
      scope: 'read',
    });
    expect(t).toMatchObject({ tokenType: 'Bearer', expiresAt: later(86400), expiresAtAssumed: true });
    expect(t.refreshToken).toBeUndefined();
  });

  it('Notion: no expiry and the workspace as extras; the owner object is not kept', () => {
    const t = token('notion', {
      access_token: 'secret_e4ZC',
      token_type: 'bearer',
      bot_id: 'b3414d659-1224-5ty7-6ffr-cc9d8773drt601288f',
      workspace_name: 'Ada’s Notion',
      workspace_icon: 'https://example.com/icon.png',
      workspace_id: 'j565j4d7x3-2882-61bs-564a-jj9d9ui-c36hxfr7x',
      owner: { type: 'user', user: { object: 'user', id: 'u1' } },
      duplicated_template_id: null,
      request_id: 'f3a1',
    });
    expect(t.expiresAt).toBeUndefined();
    expect(t.expiresAtAssumed).toBe(false);
    expect(Object.keys(t.extra).sort()).toEqual(['botId', 'workspaceId', 'workspaceName']);
  });

  it('Linear: scopes as a JSON array', () => {
    const t = token('linear', {
      access_token: 'lin_oauth_8f8a',
      token_type: 'Bearer',
      expires_in: 315705599,
      scope: ['read', 'write'],
    });
    expect(t.scopes).toEqual(['read', 'write']);
  });

  it('Figma: the refresh answer has neither refresh token nor token type', () => {
    const first = token('figma', {
      user_id_string: '12345678901234567890',
      access_token: 'figu_1',
      refresh_token: 'figr_1',
      expires_in: 7776000,
    });
    expect(first.extra.userId).toBe('12345678901234567890');
    const merged = mergeRefreshed(first, token('figma', { access_token: 'figu_2', expires_in: 7776000 }));
    expect(merged).toMatchObject({ accessToken: 'figu_2', refreshToken: 'figr_1', tokenType: 'Bearer' });
  });

  it('Asana, Dropbox, Zoom, Discord, GitLab, HubSpot, Atlassian: lifetimes and extras', () => {
    expect(
      token('asana', {
        access_token: 'f6ds7fdsa69ags7ag9sd5a',
        expires_in: 3600,
        token_type: 'bearer',
        refresh_token: 'hjkl325hjkl4325hj4kl32fjds',
        data: { id: 4673218951, gid: '4673218951', name: 'Greg Sanchez', email: 'gsanchez@example.com' },
      }).extra,
    ).toEqual({ userGid: '4673218951', userName: 'Greg Sanchez' });
    expect(
      token('dropbox', {
        access_token: 'sl.AbX9y6Fe',
        expires_in: 14400,
        token_type: 'bearer',
        scope: 'account_info.read files.content.read',
        refresh_token: 'nBiM85CZALsAAAAAAAAAAQXHBoNpNutK4ngsXHsqW4i',
        account_id: 'dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc',
        uid: '12345',
      }).extra,
    ).toEqual({ accountId: 'dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc', uid: '12345' });
    expect(
      token('zoom', {
        access_token: 'eyJzdiI6',
        token_type: 'bearer',
        refresh_token: 'eyJzdiI6r',
        expires_in: 3599,
        scope: 'user:read:admin',
        api_url: 'https://api.zoom.us',
      }),
    ).toMatchObject({ expiresAt: later(3599), extra: { apiUrl: 'https://api.zoom.us' } });
    expect(
      token('discord', {
        access_token: '6qrZcUqja7812RVdnEKjpzOL4CvHBFG',
        token_type: 'Bearer',
        expires_in: 604800,
        refresh_token: 'D43f5y0ahjqew82jZ4NViEr2YafMKhue',
        scope: 'identify bot',
        guild: { id: '290926798626357999', name: 'x' },
      }),
    ).toMatchObject({ expiresAt: later(604800), extra: { guildId: '290926798626357999' } });
    expect(
      token('gitlab', {
        access_token: 'de6780bc506a0446309bd9362820ba8aed28aa506c71eedbe1c5c4f9dd350e54',
        token_type: 'Bearer',
        expires_in: 7200,
        refresh_token: '8257e65c97202ed1726cf9571600918f3bffb2544b26e00a61df9897668c33a1',
        created_at: 1607635748,
      }),
    ).toMatchObject({ expiresAt: later(7200), extra: { createdAt: 1607635748 } });
    expect(
      token('hubspot', {
        token_type: 'bearer',
        refresh_token: 'na1-6b',
        access_token: 'CN2z',
        expires_in: 1800,
      }),
    ).toMatchObject({ expiresAt: later(1800), tokenType: 'Bearer' });
    const atlassian = token('atlassian', {
      access_token: 'eyJraWQ',
      expires_in: 3600,
      token_type: 'Bearer',
      refresh_token: 'rotated-2',
      scope: 'read:jira-work offline_access',
    });
    const stored = { ...atlassian, refreshToken: 'rotated-1' };
    expect(mergeRefreshed(stored, atlassian).refreshToken).toBe('rotated-2');
  });
});

describe('expiry fields the catalog can describe', () => {
  const generic = catalog.get('generic')!;
  const withRules = (rules: object) => ({
    ...generic,
    tokenResponse: { ...generic.tokenResponse, ...rules },
  });

  it('reads a lifetime from a non-standard field (Zoho-style expires_in_sec, Facebook-style expires)', () => {
    const zoho = normalizeTokenResponse(
      withRules({ expiresIn: 'expires_in_sec' }),
      { status: 200, body: { access_token: 'z', expires_in: 3600000, expires_in_sec: 3600 } },
      now,
    );
    expect(zoho).toMatchObject({ ok: true, token: { expiresAt: later(3600), expiresAtAssumed: false } });
  });

  it('reads an absolute expiry in epoch seconds, nested or not', () => {
    const outcome = normalizeTokenResponse(
      withRules({ expiresAtEpoch: 'token.expires_at' }),
      { status: 200, body: { access_token: 'e', token: { expires_at: 1767229200 } } },
      now,
    );
    expect(outcome).toMatchObject({ ok: true, token: { expiresAt: '2026-01-01T01:00:00.000Z' } });
  });

  it('treats expires_in 0, negative or garbage as absent, and then assumes the lifetime', () => {
    for (const expires_in of [0, -5, 'soon', null]) {
      expect(token('generic', { access_token: 'g', expires_in }), String(expires_in)).toMatchObject({
        expiresAt: later(3600),
        expiresAtAssumed: true,
      });
    }
  });

  it('keeps no expiry for tokens of providers whose tokens do not expire', () => {
    expect(token('github', { access_token: 'gho_x', token_type: 'bearer' }).expiresAt).toBeUndefined();
  });
});

describe('classifying refusals', () => {
  it('invalid_grant and its equivalents mean the user must connect again', () => {
    expect(
      failure('google', { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' }),
    ).toEqual({
      kind: 'reauth_required',
      code: 'invalid_grant',
      description: 'Token has been expired or revoked.',
      status: 400,
    });
    expect(
      failure('microsoft', {
        error: 'invalid_grant',
        error_description: 'AADSTS700082: expired due to inactivity',
      }).kind,
    ).toBe('reauth_required');
    expect(failure('microsoft', { error: 'interaction_required' }).kind).toBe('reauth_required');
    expect(
      failure('salesforce', { error: 'invalid_grant', error_description: 'expired access/refresh token' })
        .kind,
    ).toBe('reauth_required');
    expect(
      failure(
        'atlassian',
        { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' },
        403,
      ).kind,
    ).toBe('reauth_required');
  });

  it('GitHub answers errors with HTTP 200', () => {
    expect(
      failure(
        'github',
        {
          error: 'bad_verification_code',
          error_description: 'The code passed is incorrect or expired.',
          error_uri:
            'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code',
        },
        200,
      ).kind,
    ).toBe('reauth_required');
    expect(failure('github-app', { error: 'bad_refresh_token' }, 200).kind).toBe('reauth_required');
    expect(failure('github', { error: 'incorrect_client_credentials' }, 200).kind).toBe('fatal');
  });

  it('Slack: ok false with HTTP 200, by its own codes', () => {
    expect(failure('slack', { ok: false, error: 'invalid_refresh_token' }, 200)).toEqual({
      kind: 'reauth_required',
      code: 'invalid_refresh_token',
      status: 200,
    });
    expect(failure('slack', { ok: false, error: 'token_revoked' }, 200).kind).toBe('reauth_required');
    expect(failure('slack', { ok: false, error: 'ratelimited' }, 200).kind).toBe('retryable');
    expect(failure('slack', { ok: false, error: 'bad_client_secret' }, 200).kind).toBe('fatal');
    expect(failure('slack', { ok: false }, 200)).toEqual({
      kind: 'fatal',
      code: 'invalid_response',
      status: 200,
    });
  });

  it('HubSpot puts its code in status and its description in message', () => {
    expect(
      failure('hubspot', {
        status: 'BAD_REFRESH_TOKEN',
        message: 'missing or unknown refresh token',
        correlationId: 'c1',
      }),
    ).toEqual({
      kind: 'reauth_required',
      code: 'BAD_REFRESH_TOKEN',
      description: 'missing or unknown refresh token',
      status: 400,
    });
  });

  it('Zoom: invalid_request means reauth only when its reason says the token is invalid', () => {
    expect(failure('zoom', { reason: 'Invalid Token!', error: 'invalid_request' }).kind).toBe(
      'reauth_required',
    );
    expect(
      failure('zoom', { reason: 'Invalid request : Redirect URI mismatch.', error: 'invalid_request' }).kind,
    ).toBe('fatal');
    expect(
      failure('zoom', { reason: 'Invalid client_id or client_secret', error: 'invalid_client' }, 401).kind,
    ).toBe('fatal');
  });

  it('429, 408 and 5xx are retryable, honouring Retry-After as seconds or as a date', () => {
    expect(failure('slack', '', 429, '30')).toEqual({
      kind: 'retryable',
      code: 'http_429',
      status: 429,
      retryAfterSeconds: 30,
    });
    expect(failure('generic', '<html>bad gateway</html>', 502)).toEqual({
      kind: 'retryable',
      code: 'http_502',
      status: 502,
    });
    expect(
      failure('generic', { error: 'invalid_grant' }, 503, 'Thu, 01 Jan 2026 00:02:00 GMT'),
    ).toMatchObject({
      kind: 'retryable',
      code: 'invalid_grant',
      retryAfterSeconds: 120,
    });
    expect(failure('generic', {}, 408).kind).toBe('retryable');
    expect(failure('generic', { error: 'temporarily_unavailable' }).kind).toBe('retryable');
  });

  it('anything else is fatal: a bad client, a body that is no token, an HTML error page', () => {
    expect(failure('generic', { error: 'invalid_client' }, 401).kind).toBe('fatal');
    expect(failure('generic', { error: 'unsupported_grant_type' }).kind).toBe('fatal');
    expect(failure('generic', '<html>no</html>', 400)).toEqual({
      kind: 'fatal',
      code: 'http_400',
      status: 400,
    });
    expect(failure('generic', { token_type: 'Bearer' }, 200)).toMatchObject({
      kind: 'fatal',
      code: 'invalid_response',
    });
    expect(failure('generic', 'access_token=x', 200)).toMatchObject({
      kind: 'fatal',
      code: 'invalid_response',
    });
  });

  it('lets a provider rule refine a standard code, and leaves unknown codes fatal', () => {
    const entry = { errors: { retryable: [{ code: 'invalid_grant', descriptionPattern: 'try again' }] } };
    expect(classifyError(entry, 'invalid_grant', 'please try again')).toBe('retryable');
    expect(classifyError(entry, 'invalid_grant', 'revoked')).toBe('reauth_required');
    expect(classifyError({}, 'something_new')).toBe('fatal');
  });

  it('reads Retry-After defensively', () => {
    expect(retryAfterSeconds(undefined, now)).toBeUndefined();
    expect(retryAfterSeconds('soon', now)).toBeUndefined();
    expect(retryAfterSeconds('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
  });
});
