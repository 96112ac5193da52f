import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebhookReceiver, testWebhookSecret, type WebhookReceiver } from '../events/webhook-receiver.js';
import { cliAgainst } from '../helpers/cli-in-process.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, errorOf, retrieve, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { addOidcApp, freePort } from './oauth-app-fixture.js';

/**
 * Issue 13 across its parts as the vault wires them (not each part with test doubles): a user
 * connects through the CLI's link; the agent's retrieval of the expired token refreshes it with the
 * app the credential was connected through; the provider's `invalid_grant` turns the credential
 * `needs_reauth` once and the operator's webhook receives one signed `credential.needs_reauth`;
 * connecting again clears it and announces `credential.reauthorized`.
 */
describe('the OAuth lifecycle, wired: connect, refresh, needs_reauth, reconnect', () => {
  let op: TestOAuthServer;
  let t: TestVault;
  let receiver: WebhookReceiver;
  let cli: ReturnType<typeof cliAgainst>;
  let agent: TestAgent;

  beforeAll(async () => {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    receiver = await startWebhookReceiver();
    op = await startOAuthServer({ accessTokenTtl: 3, redirectUris: [`${publicUrl}/v1/oauth/callback`] });
    t = await startTestVault({
      settings: {
        port: String(port),
        publicUrl,
        outboundAllow: '127.0.0.1',
        oauthAllowHttp: 'true',
        eventsWebhookUrl: receiver.url,
        eventsWebhookSecret: testWebhookSecret,
        eventsPollMs: '20',
      },
    });
    cli = cliAgainst(await t.vault.listen(), t.rootToken);
    await addOidcApp(cli, op, { name: 'calendar', scopes: 'openid offline_access api:read' });
    agent = await addAgent(t, 'assistant');
  });
  afterAll(async () => {
    await t?.stop();
    await op?.stop();
    await receiver?.close();
  });

  const connect = async (user: string) => {
    const made = await cli([
      'connect',
      'calendar',
      '--agent',
      'assistant',
      '--user',
      user,
      '--reveal',
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const { url } = JSON.parse(made.stdout) as { url: string };
    const browser = op.browser({ account: user });
    expect((await browser.get(url)).status).toBe(200);
    const done = await browser.post(url, {});
    expect(done.status, done.body).toBe(200);
  };
  const retrieveFor = (user: string) =>
    retrieve(t, agent, { agent: 'assistant', service: 'calendar', query: `?user=${user}` });
  const eventsOfType = (type: string) =>
    receiver.received.filter((event) => (JSON.parse(event.body) as { type: string }).type === type);

  it('refreshes an expired token through the app it was connected with, once', async () => {
    await connect('alice');
    const first = await retrieveFor('alice');
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const firstToken = (first.body as { access_token: string }).access_token;

    // The provider's access tokens live 3 s: wait them out, then ask again.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    const refreshesBefore = op.tokenSuccesses('refresh_token');
    const second = await retrieveFor('alice');
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    const secondToken = (second.body as { access_token: string }).access_token;
    expect(secondToken).not.toBe(firstToken);
    expect(op.tokenSuccesses('refresh_token')).toBe(refreshesBefore + 1);
    expect(await op.introspect(secondToken)).toMatchObject({ active: true, sub: 'alice' });
  });

  it('turns invalid_grant into needs_reauth once, with one signed webhook, and stops asking', async () => {
    op.failTokenRequests({
      grantType: 'refresh_token',
      status: 400,
      body: { error: 'invalid_grant', error_description: 'grant revoked' },
      times: 1,
    });
    const forced = await t.request('POST', '/v1/admin/credentials/calendar/refresh?user=alice', { body: {} });
    expect(forced.status, forced.text).toBe(200);
    expect(forced.body).toMatchObject({ outcome: 'needs_reauth' });

    await receiver.waitFor(1, 10_000);
    const needsReauth = eventsOfType('credential.needs_reauth');
    expect(needsReauth).toHaveLength(1);
    expect(needsReauth[0]!.verified).toBe(true);
    expect(JSON.parse(needsReauth[0]!.body)).toMatchObject({ type: 'credential.needs_reauth' });

    const requestsBefore = op.tokenRequests('refresh_token');
    const refused = await retrieveFor('alice');
    expect(errorOf(refused.body).code).toBe('credential_needs_reauth');
    const again = await t.request('POST', '/v1/admin/credentials/calendar/refresh?user=alice', { body: {} });
    expect(again.body).toMatchObject({ outcome: 'needs_reauth', refresh: { status: 'needs_reauth' } });
    // Never a retry loop: nothing more went to the provider.
    expect(op.tokenRequests('refresh_token')).toBe(requestsBefore);
    expect(eventsOfType('credential.needs_reauth')).toHaveLength(1);
  });

  it('clears needs_reauth when the user connects again, and announces it', async () => {
    await connect('alice');
    const back = await retrieveFor('alice');
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    await receiver.waitFor(2, 10_000);
    const reauthorized = eventsOfType('credential.reauthorized');
    expect(reauthorized).toHaveLength(1);
    expect(reauthorized[0]!.verified).toBe(true);
    // The events name the credential, never a token.
    for (const event of receiver.received) {
      expect(event.body).not.toContain((back.body as { access_token: string }).access_token);
    }
  });
});
