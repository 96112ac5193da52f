import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { cliAgainst } from '../helpers/cli-in-process.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, retrieve, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { addOidcApp } from './oauth-app-fixture.js';
import { recordingEvents } from './refresh-fixture.js';

/**
 * Issue 13 item 4: a client-credentials credential. No person is involved: the vault fetches the
 * app's own token when asked (`connect --client-credentials`) and renews it by asking again — in the
 * refresh scheduler, by due time, under the same fenced lease as a refresh (src/oauth/refresh/), and
 * on demand when a retrieval finds it expired. The vault's clock is a test clock moved past expiries;
 * the provider's is real, so its introspection checks every token handed out.
 */
const ttl = 300;

describe('client-credentials credentials', () => {
  let op: TestOAuthServer;
  let t: TestVault;
  let cli: ReturnType<typeof cliAgainst>;
  let agent: TestAgent;
  const clock = fixedClock(new Date());
  const events = recordingEvents();

  beforeAll(async () => {
    op = await startOAuthServer({ accessTokenTtl: ttl });
    t = await startTestVault({
      clock,
      settings: { outboundAllow: '127.0.0.1', oauthAllowHttp: 'true' },
      // The test runs the scheduler's passes itself.
      oauthRefresh: { events, scheduler: { pollMs: 3_600_000 } },
    });
    cli = cliAgainst(await t.vault.listen(), t.rootToken);
    await addOidcApp(cli, op, { name: 'api', scopes: 'api:read' });
    agent = await addAgent(t, 'batch');
  });
  afterAll(async () => {
    await t?.stop();
    await op?.stop();
  });

  const grants = () => op.tokenSuccesses('client_credentials');
  const token = async () => {
    const response = await retrieve(t, agent, { agent: 'batch', service: 'api' });
    expect(response.status, response.text).toBe(200);
    return (response.body as { access_token: string }).access_token;
  };
  const tick = () => t.vault.services.oauthRefresh.scheduler.tick();
  const connect = async () => {
    const made = await cli([
      'connect',
      'api',
      '--agent',
      'batch',
      '--client-credentials',
      '--reveal',
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
  };

  it('fetches the app’s token, grants it, and the scheduler renews it before it expires', async () => {
    await connect();
    expect(grants()).toBe(1);

    const first = await token();
    expect(await op.introspect(first)).toMatchObject({
      active: true,
      client_id: op.client.client_id,
      scope: 'api:read',
    });
    const shown = await t.request('GET', '/v1/admin/credentials/api');
    // The credential does not expire with its first token: the scheduler keeps it valid.
    expect(shown.body).toMatchObject({ type: 'oauth2', subject: null, expires_at: null });

    // Scheduled by due time: nothing to do at first, nor halfway through the token's life.
    await tick();
    clock.advance((ttl / 2) * 1000);
    await tick();
    expect(grants()).toBe(1);
    // Within the margin before expiry (a quarter of a 5-minute token's life, plus jitter): renewed.
    clock.advance((ttl / 2 - 20) * 1000);
    await tick();
    expect(grants()).toBe(2);
    const second = await token();
    expect(second).not.toBe(first);
    expect(await op.introspect(second)).toMatchObject({ active: true, client_id: op.client.client_id });
    const id = (await t.vault.services.credentials.get('default', 'api')).id;
    const status = await t.vault.services.oauthRefresh.status('default', id);
    expect(status).toMatchObject({ status: 'active', failures: 0, lastError: null });
    expect(Date.parse(status!.accessExpiresAt!)).toBe(clock.now().getTime() + ttl * 1000);
    expect(t.logs()).not.toContain(second);
  });

  it('concurrent retrievals of an expired token cause exactly one token request at the provider', async () => {
    const before = grants();
    const old = await token();
    clock.advance((ttl + 5) * 1000);
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => retrieve(t, agent, { agent: 'batch', service: 'api' })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200));
    expect(grants() - before).toBe(1);
    const tokens = new Set(answers.map((a) => (a.body as { access_token: string }).access_token));
    expect(tokens.size).toBe(1);
    const [renewed] = [...tokens];
    expect(renewed).not.toBe(old);
    expect((await op.introspect(renewed!)).active).toBe(true);
  });

  it('backs off on 503 and keeps the current token; invalid_client is final: needs_reauth once, no retry', async () => {
    const id = (await t.vault.services.credentials.get('default', 'api')).id;
    const current = await token();
    op.failTokenRequests({ grantType: 'client_credentials', status: 503, times: 1 });
    const requests = op.tokenRequests('client_credentials');
    const forced = await t.request('POST', '/v1/admin/credentials/api/refresh');
    expect(forced.status, forced.text).toBe(200);
    expect(await t.vault.services.oauthRefresh.status('default', id)).toMatchObject({
      status: 'failing',
      failures: 1,
    });
    expect(await token()).toBe(current);

    op.failTokenRequests({
      grantType: 'client_credentials',
      status: 401,
      times: 1,
      body: { error: 'invalid_client', error_description: 'client authentication failed' },
    });
    clock.advance(16 * 60_000);
    await tick();
    expect(op.tokenRequests('client_credentials') - requests).toBe(2);
    expect(await t.vault.services.oauthRefresh.status('default', id)).toMatchObject({
      status: 'needs_reauth',
      lastError: 'invalid_client',
    });
    const refused = await retrieve(t, agent, { agent: 'batch', service: 'api' });
    expect((refused.body as { error: { code: string } }).error.code).toBe('credential_needs_reauth');
    // Final: neither the scheduler nor a retrieval asks again.
    clock.advance(3_600_000);
    await tick();
    await retrieve(t, agent, { agent: 'batch', service: 'api' });
    expect(op.tokenRequests('client_credentials') - requests).toBe(2);
    expect(events.published.filter((e) => e.type === 'credential.needs_reauth')).toHaveLength(1);

    // Connecting again (once the app is fixed) brings it back.
    await connect();
    expect((await op.introspect(await token())).active).toBe(true);
    expect(events.published.filter((e) => e.type === 'credential.reauthorized')).toHaveLength(1);
  });
});
