import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAgainst } from '../helpers/cli-in-process.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, retrieve, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { addOidcApp } from './oauth-app-fixture.js';

const deviceGrant = 'urn:ietf:params:oauth:grant-type:device_code';

/**
 * Issue 13 item 4: the device authorization grant end to end. The vault starts it (`connect --device`),
 * the person enters the code at the provider, and the vault polls at the provider's interval, backing
 * off by 5 s on `slow_down` (the provider here answers the first poll with it), then stores the tokens.
 */
describe('device flow consent', () => {
  let op: TestOAuthServer;
  let t: TestVault;
  let cli: ReturnType<typeof cliAgainst>;
  let agent: TestAgent;

  beforeAll(async () => {
    op = await startOAuthServer({ deviceInterval: 1, slowDownFirstPoll: true });
    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1', oauthAllowHttp: 'true' } });
    cli = cliAgainst(await t.vault.listen(), t.rootToken);
    await addOidcApp(cli, op, { name: 'local', scopes: 'openid offline_access api:read' });
    agent = await addAgent(t, 'helper');
  });
  afterAll(async () => {
    await t?.stop();
    await op?.stop();
  });

  const statusOf = async (id: string) =>
    (await t.request('GET', `/v1/admin/connect/${id}`)).body as { status: string; error_code: string | null };

  const settled = async (id: string, timeoutMs = 20_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const s = await statusOf(id);
      if (s.status === 'completed' || s.status === 'failed' || Date.now() > until) return s;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  it('connects through a user code, polling at the interval and honouring slow_down', async () => {
    const started = Date.now();
    const made = await cli([
      'connect',
      'local',
      '--agent',
      'helper',
      '--user',
      'erin',
      '--reveal',
      '--device',
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const link = JSON.parse(made.stdout) as {
      id: string;
      url: string;
      user_code: string;
      verification_uri: string;
    };
    expect(link.verification_uri).toBe(`${op.issuer}/device`);
    expect(link.user_code).toBeTruthy();

    const page = await op.browser({ account: 'erin' }).approveDevice(link.user_code);
    expect(page.status).toBe(200);
    expect(await settled(link.id)).toMatchObject({ status: 'completed', error_code: null });
    // First poll after 1 s: slow_down; the next one 1 + 5 s later: the tokens. Nothing in between.
    expect(op.tokenRequests(deviceGrant)).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(6000);

    const response = await retrieve(t, agent, { agent: 'helper', service: 'local', query: '?user=erin' });
    expect(response.status, response.text).toBe(200);
    const token = (response.body as { access_token: string }).access_token;
    expect(await op.introspect(token)).toMatchObject({ active: true, sub: 'erin' });
  }, 30_000);

  it('records a denied device authorization as connect_denied', async () => {
    const made = await cli([
      'connect',
      'local',
      '--agent',
      'helper',
      '--user',
      'frank',
      '--device',
      '--json',
    ]);
    const link = JSON.parse(made.stdout) as { id: string; user_code: string };
    await op.browser({ account: 'frank', deny: true }).approveDevice(link.user_code);
    expect(await settled(link.id)).toMatchObject({ status: 'failed', error_code: 'connect_denied' });
    // The session is marked failed just before its refusal is recorded: wait for the event too.
    const deniedRecorded = async () => {
      const events = (await t.request('GET', '/v1/admin/audit/events?limit=1000')).body as {
        items: { action: string; decision: string; reason: string | null }[];
      };
      return events.items.some((e) => e.action === 'connect.complete' && e.reason === 'connect_denied');
    };
    const until = Date.now() + 5000;
    while (!(await deniedRecorded()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(await deniedRecorded()).toBe(true);
  }, 30_000);
});
