import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import {
  admin,
  connect,
  oauthCredential,
  recordingEvents,
  resolverFor,
  startCallbackServer,
} from './refresh-fixture.js';

/**
 * Issue 13 item 6 against a real OAuth server (oidc-provider: access tokens of 60 s, refresh tokens
 * rotated on every use, reuse of a rotated one revoking the grant). The vault's clock is a test clock,
 * moved past expiries; the provider's is real, so every token the vault holds is checked with the
 * provider's introspection.
 */

const ttl = 60;

describe('OAuth refresh against oidc-provider', () => {
  let op: TestOAuthServer;
  let callback: Awaited<ReturnType<typeof startCallbackServer>>;
  let t: TestVault;
  const clock = fixedClock(new Date());
  const events = recordingEvents();
  let apiKey: string;

  const retrieve = (name: string) =>
    t.request('GET', `/v1/agents/agent-42/credentials/${name}`, { token: apiKey });
  const refreshes = () => op.tokenRequests('refresh_token');
  const stored = async (name: string) =>
    (await t.vault.services.credentials.readSecret('default', name)).secret;

  beforeAll(async () => {
    callback = await startCallbackServer();
    op = await startOAuthServer({ accessTokenTtl: ttl, redirectUris: [callback.url] });
    t = await startTestVault({
      clock,
      settings: { outboundAllow: '127.0.0.1' },
      oauthRefresh: {
        resolveApp: resolverFor(op),
        events,
        tokenClient: { allowHttp: true },
        // The test runs the scheduler's passes itself.
        scheduler: { pollMs: 3_600_000 },
      },
    });
    const first = await oauthCredential(t, 'calendar', await connect(op, callback.url));
    apiKey = first.apiKey!;
    // Adopted with its expiry unknown: the first pass refreshes it to learn it.
    await t.vault.services.oauthRefresh.scheduler.adopt();
    await t.vault.services.oauthRefresh.scheduler.tick();
  }, 30_000);
  afterAll(async () => {
    await t?.stop();
    await op?.stop();
    await callback?.stop();
  });

  it('50 concurrent retrievals of an expired token cause exactly one refresh at the provider', async () => {
    const before = refreshes();
    const oldToken = (await stored('calendar')).access_token;
    clock.advance((ttl + 5) * 1000);
    const answers = await Promise.all(Array.from({ length: 50 }, () => retrieve('calendar')));
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
    expect(refreshes() - before).toBe(1);
    const tokens = new Set(answers.map((a) => (a.body as { access_token: string }).access_token));
    expect(tokens.size).toBe(1);
    const [token] = [...tokens];
    expect(token).not.toBe(oldToken);
    expect((await op.introspect(token!)).active).toBe(true);
    const status = await t.vault.services.oauthRefresh.status(
      'default',
      (await t.vault.services.credentials.get('default', 'calendar')).id,
    );
    expect(status).toMatchObject({ status: 'active', failures: 0, lastError: null });
    expect(Date.parse(status!.accessExpiresAt!)).toBe(clock.now().getTime() + ttl * 1000);
  });

  it('persists the rotated refresh token with its access token (the old one is dead at the provider)', async () => {
    const before = await stored('calendar');
    const { version: v1 } = await t.vault.services.credentials.readSecret('default', 'calendar');
    const forced = await t.request('POST', '/v1/admin/credentials/calendar/refresh');
    expect(forced.status, forced.text).toBe(200);
    const after = await t.vault.services.credentials.readSecret('default', 'calendar');
    expect(after.version).toBe(v1 + 1);
    expect(after.secret.refresh_token).not.toBe(before.refresh_token);
    expect(after.secret.access_token).not.toBe(before.access_token);
    expect((await op.introspect(before.refresh_token!)).active).toBe(false);
    expect((await op.introspect(after.secret.refresh_token!)).active).toBe(true);
    expect(forced.body).toMatchObject({ outcome: 'refreshed', refresh: { status: 'active' } });
  });

  it('backs off on 503 honouring Retry-After, keeps the current token, and recovers', async () => {
    const id = (await t.vault.services.credentials.get('default', 'calendar')).id;
    const current = (await stored('calendar')).access_token;
    op.failTokenRequests({
      grantType: 'refresh_token',
      status: 503,
      times: 1,
      headers: { 'retry-after': '120' },
    });
    const before = refreshes();
    const forced = await t.request('POST', '/v1/admin/credentials/calendar/refresh');
    expect(forced.status).toBe(200);
    const status = await t.vault.services.oauthRefresh.status('default', id);
    expect(status).toMatchObject({ status: 'failing', failures: 1, lastError: 'server_error' });
    expect(Date.parse(status!.nextRefreshAt!) - clock.now().getTime()).toBeGreaterThanOrEqual(120_000);
    // The token is still valid: retrievals get it, and nothing calls the provider while backing off.
    const answer = await retrieve('calendar');
    expect((answer.body as { access_token: string }).access_token).toBe(current);
    await t.vault.services.oauthRefresh.scheduler.tick();
    expect(refreshes() - before).toBe(1);
    // Once the wait is over, the scheduler refreshes it.
    clock.advance(121_000);
    await t.vault.services.oauthRefresh.scheduler.tick();
    expect(refreshes() - before).toBe(2);
    expect(await t.vault.services.oauthRefresh.status('default', id)).toMatchObject({
      status: 'active',
      failures: 0,
    });
  });

  it('a grant refused with invalid_grant flips to needs_reauth once, one event, and stops; reconnecting clears it', async () => {
    // Only this credential from here on, so the provider's count is its own.
    await admin(t, 'DELETE', '/v1/admin/credentials/calendar');
    await oauthCredential(t, 'drive', await connect(op, callback.url, 'bob'));
    await t.vault.services.oauthRefresh.scheduler.adopt();
    await t.vault.services.oauthRefresh.scheduler.tick();
    // The person revokes the vault's access at the provider (RFC 7009 on the refresh token).
    const { refresh_token } = await stored('drive');
    const revoked = await fetch(`${op.issuer}/token/revocation`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${op.client.client_id}:${op.client.client_secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ token: refresh_token!, token_type_hint: 'refresh_token' }),
    });
    expect(revoked.status).toBe(200);
    events.published.length = 0;
    const before = refreshes();
    clock.advance((ttl + 5) * 1000);
    const answers = await Promise.all(Array.from({ length: 10 }, () => retrieve('drive')));
    for (const answer of answers) {
      expect(answer.status).toBe(409);
      expect((answer.body as { error: { code: string } }).error.code).toBe('credential_needs_reauth');
    }
    // Never a retry loop: more retrievals, scheduler passes and a day later, no more requests.
    clock.advance(86_400_000);
    await t.vault.services.oauthRefresh.scheduler.tick();
    expect((await retrieve('drive')).status).toBe(409);
    expect(refreshes() - before).toBe(1);
    expect(events.published).toEqual([
      {
        type: 'credential.needs_reauth',
        namespace: 'default',
        data: expect.objectContaining({ credential_name: 'drive', error: 'invalid_grant' }),
      },
    ]);
    const audit = (await admin(t, 'GET', '/v1/admin/audit/events?action=credential.refresh&limit=100')) as {
      items: { decision: string; reason: string; details: Record<string, unknown> }[];
    };
    const reauth = audit.items.filter((e) => e.reason === 'credential_needs_reauth');
    expect(reauth).toHaveLength(1);
    expect(reauth[0]!.details).toMatchObject({ credential_name: 'drive', provider_error: 'invalid_grant' });

    // Reconnected (a new consent stores new tokens): active again, announced once.
    await admin(t, 'PATCH', '/v1/admin/credentials/drive', {
      secret: await connect(op, callback.url, 'bob'),
    });
    await t.vault.services.oauthRefresh.scheduler.adopt();
    expect(events.published.map((e) => e.type)).toEqual([
      'credential.needs_reauth',
      'credential.reauthorized',
    ]);
    const answer = await retrieve('drive');
    expect(answer.status, answer.text).toBe(200);
    expect((await op.introspect((answer.body as { access_token: string }).access_token)).active).toBe(true);
  }, 30_000);
});

describe('a week of simulated time', () => {
  let op: TestOAuthServer;
  let callback: Awaited<ReturnType<typeof startCallbackServer>>;
  let t: TestVault;
  const clock = fixedClock(new Date());
  let apiKey: string;

  const retrieve = (name: string) =>
    t.request('GET', `/v1/agents/agent-42/credentials/${name}`, { token: apiKey });
  const stored = async (name: string) =>
    (await t.vault.services.credentials.readSecret('default', name)).secret;

  beforeAll(async () => {
    callback = await startCallbackServer();
    // Hour-long access tokens, as most providers issue; refresh tokens rotate on every use.
    op = await startOAuthServer({ accessTokenTtl: 3600, redirectUris: [callback.url] });
    t = await startTestVault({
      clock,
      settings: { outboundAllow: '127.0.0.1' },
      oauthRefresh: {
        resolveApp: resolverFor(op),
        events: recordingEvents(),
        tokenClient: { allowHttp: true },
        scheduler: { pollMs: 3_600_000 },
      },
    });
    apiKey = (await oauthCredential(t, 'busy', await connect(op, callback.url, 'dave'))).apiKey!;
    await oauthCredential(t, 'idle', await connect(op, callback.url, 'carol'));
  }, 30_000);
  afterAll(async () => {
    await t?.stop();
    await op?.stop();
    await callback?.stop();
  });

  it('a week of simulated time keeps every credential valid, including one nothing retrieves', async () => {
    await t.vault.services.oauthRefresh.scheduler.adopt();
    await t.vault.services.oauthRefresh.scheduler.tick();
    const step = 300_000;
    const before = op.tokenRequests('refresh_token');
    const week = 7 * 86_400_000;
    let retrieved = 0;
    for (let elapsed = 0; elapsed < week; elapsed += step) {
      clock.advance(step);
      await t.vault.services.oauthRefresh.scheduler.tick();
      // `busy` is retrieved every ~10 minutes; `idle` never.
      if (elapsed % 1_800_000 < step) {
        const answer = await retrieve('busy');
        expect(answer.status).toBe(200);
        retrieved += 1;
      }
    }
    expect(retrieved).toBeGreaterThan(300);
    // About one refresh an hour each (a week is 168 hours), never a storm.
    const refreshed = op.tokenRequests('refresh_token') - before;
    expect(refreshed).toBeGreaterThan(2 * 168);
    expect(refreshed).toBeLessThan(2 * 200);
    for (const name of ['idle', 'busy']) {
      const id = (await t.vault.services.credentials.get('default', name)).id;
      const status = await t.vault.services.oauthRefresh.status('default', id);
      expect(status, name).toMatchObject({ status: 'active', failures: 0 });
      expect(Date.parse(status!.accessExpiresAt!), name).toBeGreaterThan(clock.now().getTime());
      const secret = await stored(name);
      expect((await op.introspect(secret.refresh_token!)).active, name).toBe(true);
    }
  }, 300_000);
});
