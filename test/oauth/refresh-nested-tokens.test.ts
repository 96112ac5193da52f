import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { normalizeTokenResponse } from '../../src/oauth/normalize-token-response.js';
import { loadProviderCatalog } from '../../src/oauth/provider-catalog.js';
import type { ResolvedOAuthApp } from '../../src/oauth/refresh/refresh-types.js';
import { tokenSetToSecret } from '../../src/oauth/refresh/token-fields.js';
import { sqliteFiles } from '../contracts/canary-contract.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { startTokenServer, type TokenServer } from './provider-token-server.js';
import { admin, recordingEvents } from './refresh-fixture.js';
import { slackShapedProvider, type SlackShapedProvider } from './slack-shaped-provider.js';

/**
 * Issue 13, Slack's nested tokens end to end through the vault: one credential holds the bot token
 * and the installing user's token, each with its own single-use refresh token (12-hour access
 * tokens). A retrieval that finds them expired, and the scheduler before they expire, refresh both
 * under one lease and store both rotated refresh tokens with their access tokens in one write; the
 * Slack-shaped server counts every call and refuses (and reports) any refresh token sent twice.
 */

const slack = loadProviderCatalog().get('slack')!;
const client = { id: '1111.2222', secret: 'slack-client-secret' };
const hours = (n: number) => n * 3_600_000;

describe('Slack bot and user tokens, refreshed together', () => {
  let server: TokenServer;
  let provider: SlackShapedProvider;
  let t: TestVault;
  let apiKey: string;
  let id: string;
  const clock = fixedClock(new Date('2026-06-01T08:00:00.000Z'));
  const events = recordingEvents();
  const handedOut = new Set<string>();

  const app: ResolvedOAuthApp = {
    appId: 'slack-app',
    provider: slack,
    app: { clientId: client.id, clientSecret: client.secret },
  };
  const stored = async () => (await t.vault.services.credentials.readSecret('default', 'slack')).secret;
  const retrieve = async () => {
    const answer = await t.request('GET', '/v1/agents/agent-7/credentials/slack', { token: apiKey });
    const token = (answer.body as { access_token?: string }).access_token;
    if (token) handedOut.add(token);
    return answer;
  };
  const status = () => t.vault.services.oauthRefresh.status('default', id);
  const calls = () => provider.refreshes.bot + provider.refreshes.user;

  beforeAll(async () => {
    server = await startTokenServer();
    provider = slackShapedProvider(client);
    server.answer((request) => provider.handle(request));
    t = await startTestVault({
      clock,
      oauthRefresh: {
        resolveApp: async () => app,
        events,
        tokenClient: { fetch: server.fetch },
        // The test runs the scheduler's passes itself.
        scheduler: { pollMs: 3_600_000 },
      },
    });
    // What a Slack install's code exchange gives, stored the way the connect flow stores it.
    const installed = normalizeTokenResponse(slack, { status: 200, body: provider.install() }, clock.now());
    if (!installed.ok) throw new Error('the install answer did not normalise');
    const created = await admin(t, 'POST', '/v1/admin/credentials', {
      name: 'slack',
      type: 'oauth2',
      scopes: ['chat:write', 'channels:read'],
      secret: tokenSetToSecret(installed.token),
    });
    id = created.id as string;
    await admin(t, 'POST', '/v1/admin/agents', { name: 'agent-7' });
    apiKey = (await admin(t, 'POST', '/v1/admin/agents/agent-7/keys', { name: 'key' })).api_key as string;
    await admin(t, 'POST', '/v1/admin/grants', {
      agent: 'agent-7',
      credential: 'slack',
      reveal: true,
      until_revoked: true,
    });
    // Adopted with its expiry unknown: the first pass refreshes both tokens to learn it.
    await t.vault.services.oauthRefresh.scheduler.adopt();
    await t.vault.services.oauthRefresh.scheduler.tick();
  }, 30_000);
  afterAll(async () => {
    await t?.stop();
    await server?.close();
  });

  it('the credential holds both tokens, and a refresh renews each with its own refresh token', async () => {
    expect(provider.refreshes).toEqual({ bot: 1, user: 1 });
    const secret = await stored();
    expect(Object.keys(secret).sort()).toEqual([
      'access_token',
      'refresh_token',
      'token_type',
      'user_access_token',
      'user_refresh_token',
      'user_token_type',
    ]);
    expect(secret.refresh_token).toBe(provider.live('bot'));
    expect(secret.user_refresh_token).toBe(provider.live('user'));
    expect(secret.access_token).toMatch(/^xoxe\.xoxb-/);
    expect(secret.user_access_token).toMatch(/^xoxe\.xoxp-/);
    expect(await status()).toMatchObject({ status: 'active', failures: 0 });
    expect(Date.parse((await status())!.accessExpiresAt!)).toBe(clock.now().getTime() + hours(12));
  });

  it('concurrent retrievals of expired tokens cause one refresh of each at the provider', async () => {
    const before = { ...provider.refreshes };
    const old = await stored();
    clock.advance(hours(12) + 60_000);
    const answers = await Promise.all(Array.from({ length: 30 }, () => retrieve()));
    expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200));
    expect(provider.refreshes).toEqual({ bot: before.bot + 1, user: before.user + 1 });
    const tokens = new Set(answers.map((a) => (a.body as { access_token: string }).access_token));
    expect(tokens.size).toBe(1);
    const secret = await stored();
    expect([...tokens]).toEqual([secret.access_token]);
    expect(secret.access_token).not.toBe(old.access_token);
    expect(secret.user_access_token).not.toBe(old.user_access_token);
    // Both rotated refresh tokens stored: the live ones at the provider.
    expect(secret.refresh_token).toBe(provider.live('bot'));
    expect(secret.user_refresh_token).toBe(provider.live('user'));
    expect(provider.reused).toEqual([]);
  });

  it('the scheduler refreshes both before they expire, not earlier than the margin', async () => {
    const before = calls();
    // 12-hour tokens: refreshed 5 minutes (plus up to a minute of jitter) before they expire.
    clock.advance(hours(12) - 7 * 60_000);
    await t.vault.services.oauthRefresh.scheduler.tick();
    expect(calls()).toBe(before);
    clock.advance(3 * 60_000);
    await t.vault.services.oauthRefresh.scheduler.tick();
    expect(calls()).toBe(before + 2);
    const secret = await stored();
    expect(secret.refresh_token).toBe(provider.live('bot'));
    expect(secret.user_refresh_token).toBe(provider.live('user'));
    expect(provider.reused).toEqual([]);
    expect(await status()).toMatchObject({ status: 'active', failures: 0 });
  });

  it('a failed user-token refresh loses nothing: the spent bot refresh token’s successor is stored, and a retry renews both', async () => {
    provider.failNext('user', {
      body: { ok: false, error: 'ratelimited' },
      headers: { 'retry-after': '30' },
    });
    const before = { ...provider.refreshes };
    const forced = await t.request('POST', '/v1/admin/credentials/slack/refresh');
    expect(forced.status, forced.text).toBe(200);
    // The bot's old refresh token is spent at Slack: its successor must be the one stored.
    expect((await stored()).refresh_token).toBe(provider.live('bot'));
    expect(provider.refreshes).toEqual({ bot: before.bot + 1, user: before.user });
    expect(await status()).toMatchObject({ status: 'failing', failures: 1, lastError: 'ratelimited' });
    expect((await retrieve()).status).toBe(200);

    clock.advance(31_000);
    await t.vault.services.oauthRefresh.scheduler.tick();
    expect(provider.refreshes).toEqual({ bot: before.bot + 2, user: before.user + 1 });
    const secret = await stored();
    expect(secret.refresh_token).toBe(provider.live('bot'));
    expect(secret.user_refresh_token).toBe(provider.live('user'));
    expect(await status()).toMatchObject({ status: 'active', failures: 0 });
    expect(provider.reused).toEqual([]);
  });

  it('a user token revoked at Slack flips the credential to needs_reauth once, keeping the bot’s rotated token', async () => {
    provider.revoke('user');
    const before = calls();
    clock.advance(hours(12) + 60_000);
    const refused = await retrieve();
    expect(refused.status).toBe(409);
    expect((refused.body as { error: { code: string } }).error.code).toBe('credential_needs_reauth');
    expect((await stored()).refresh_token).toBe(provider.live('bot'));
    expect(await status()).toMatchObject({ status: 'needs_reauth', lastError: 'invalid_refresh_token' });
    // Never a loop: neither retrievals nor the scheduler ask again.
    await retrieve();
    clock.advance(hours(1));
    await t.vault.services.oauthRefresh.scheduler.tick();
    expect(calls()).toBe(before + 1);
    expect(events.published.filter((e) => e.type === 'credential.needs_reauth')).toHaveLength(1);
    expect(provider.reused).toEqual([]);
  });

  it('removing the credential revokes both tokens at Slack, each refresh token first', async () => {
    const secret = await stored();
    const removed = await admin(t, 'DELETE', '/v1/admin/credentials/slack');
    expect(removed).toEqual({ deleted: 'slack', revocation: { status: 'revoked', tokens: 4 } });
    expect(provider.revokedTokens).toEqual([
      secret.refresh_token,
      secret.access_token,
      secret.user_refresh_token,
      secret.user_access_token,
    ]);
  });

  it('no Slack token or the client secret reaches the logs, the audit log or the database in the clear', async () => {
    const audit = await t.request('GET', '/v1/admin/audit/events?limit=1000');
    const database = sqliteFiles(t).toString('latin1');
    expect(provider.issued.size).toBeGreaterThan(10);
    for (const secret of [...provider.issued, client.secret]) {
      for (const [where, text] of [
        ['logs', t.logs()],
        ['audit', audit.text],
        ['database', database],
      ] as const) {
        expect(text.includes(secret), `${where} contains a secret (${secret.slice(0, 8)}…)`).toBe(false);
      }
    }
  });
});
