import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVaultClient, isVaultClientError, type VaultClientError } from '../../src/sdk/index.js';
import { sqliteFiles } from '../contracts/canary-contract.js';
import { cliAgainst } from '../helpers/cli-in-process.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, errorOf, retrieve, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { addOidcApp } from './oauth-app-fixture.js';

/**
 * Issue 13 items 3 and 4: an agent asks for its user's token, the user has not connected, and the
 * operator lets agents start the device flow for that app. The answer is `authorization_required`
 * with the user code, the verification URIs and the expiry; the vault polls the provider at its
 * interval; once the user approves at the provider, the same retrieval returns the token. Against
 * the local oidc-provider, its device pages driven over HTTP; nothing mocked.
 */

interface DeviceAnswer {
  code: string;
  flow?: string;
  connect_url?: string;
  user_code?: string;
  verification_uri?: string;
  verification_uri_complete?: string;
  interval?: number;
  expires_at?: string;
}

describe('agent-initiated device flow (authorization_required)', () => {
  let op: TestOAuthServer;
  let t: TestVault;
  let cli: ReturnType<typeof cliAgainst>;
  let agent: TestAgent;
  let url: string;
  const bodies: string[] = [];

  beforeAll(async () => {
    op = await startOAuthServer({ deviceInterval: 1 });
    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1', oauthAllowHttp: 'true' } });
    url = await t.vault.listen();
    cli = cliAgainst(url, t.rootToken);
    const scopes = 'openid offline_access api:read';
    // Browser preferred, device when the agent asks for it.
    await addOidcApp(cli, op, { name: 'both', scopes, flags: ['--agent-connect', 'browser,device'] });
    // Device only: what an agent with no way to show a link gets by default.
    await addOidcApp(cli, op, { name: 'headless', scopes, flags: ['--agent-connect', 'device'] });
    // Browser only (`--agent-connect` as before).
    await addOidcApp(cli, op, { name: 'web', scopes, flags: ['--agent-connect'] });
    agent = await addAgent(t, 'helper');
  });
  afterAll(async () => {
    await t?.stop();
    await op?.stop();
  });

  const ask = async (service: string, query: string) => {
    const response = await retrieve(t, agent, { agent: 'helper', service, query });
    bodies.push(response.text);
    return response;
  };

  const tokenOnceApproved = async (service: string, query: string, timeoutMs = 15_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const response = await ask(service, query);
      if (response.status === 200 || Date.now() > until) return response;
      expect(errorOf(response.body).code).toBe('authorization_required');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };

  it('answers with the user code, polls at the interval, and returns the token once approved', async () => {
    const first = await ask('both', '?user=dana&flow=device');
    expect(first.status).toBe(403);
    const error = errorOf(first.body) as DeviceAnswer;
    expect(error).toMatchObject({
      code: 'authorization_required',
      flow: 'device',
      verification_uri: `${op.issuer}/device`,
      interval: 1,
    });
    expect(error.user_code).toMatch(/\S{4,}/);
    expect(error.verification_uri_complete).toContain(encodeURIComponent(error.user_code!).slice(0, 4));
    expect(error.connect_url).toBe(error.verification_uri_complete);
    expect(Date.parse(error.expires_at!)).toBeGreaterThan(Date.now());
    // Asking again before the user acts: the same code, not a new device authorization.
    expect((errorOf((await ask('both', '?user=dana&flow=device')).body) as DeviceAnswer).user_code).toBe(
      error.user_code,
    );
    expect(op.deviceCodes()).toHaveLength(1);

    // Polls and their lease are bookkeeping: they never move the access generation (migration 0014),
    // so they empty no cache other agents' retrievals rely on.
    const generation = async () =>
      (await t.vault.store.db.selectFrom('access_generation').select('value').executeTakeFirstOrThrow())
        .value;
    const before = await generation();
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(op.devicePolls().length).toBeGreaterThanOrEqual(2);
    expect(await generation()).toBe(before);
    const page = await op.browser({ account: 'dana' }).approveDevice(error.user_code!);
    expect(page.status).toBe(200);
    const after = await tokenOnceApproved('both', '?user=dana&flow=device');
    expect(after.status, after.text).toBe(200);
    expect(await op.introspect((after.body as { access_token: string }).access_token)).toMatchObject({
      active: true,
      sub: 'dana',
    });
    // One poll stream, never faster than the interval (the provider would have said slow_down).
    const polls = op.devicePolls().filter((p) => p.deviceCode === op.deviceCodes()[0]);
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(polls.some((p) => p.slowDown)).toBe(false);
    for (let i = 1; i < polls.length; i += 1) {
      expect(polls[i]!.at - polls[i - 1]!.at).toBeGreaterThanOrEqual(950);
    }
    // Done: nothing left to poll.
    expect(await t.vault.store.db.selectFrom('device_polls').selectAll().execute()).toEqual([]);
  }, 30_000);

  it('uses the app’s preferred flow when the agent names none, and refuses a flow not allowed', async () => {
    const browser = errorOf((await ask('both', '?user=erin')).body) as DeviceAnswer;
    expect(browser).toMatchObject({ code: 'authorization_required', flow: 'browser' });
    expect(browser.connect_url).toMatch(/\/connect\//);
    expect(browser.user_code).toBeUndefined();

    const headless = errorOf((await ask('headless', '?user=erin')).body) as DeviceAnswer;
    expect(headless).toMatchObject({ code: 'authorization_required', flow: 'device' });
    expect(headless.user_code).toBeTruthy();

    const refused = await ask('web', '?user=erin&flow=device');
    expect(refused.status).toBe(403);
    expect(errorOf(refused.body).code).toBe('connect_flow_not_allowed');
    const alsoRefused = await ask('headless', '?user=erin&flow=browser');
    expect(errorOf(alsoRefused.body).code).toBe('connect_flow_not_allowed');
  });

  it('refuses to let agents use the device flow of a provider without a device endpoint', async () => {
    const added = await cli(
      [
        'oauth',
        'app',
        'add',
        'generic',
        '--name',
        'nodevice',
        '--client-id',
        'x',
        '--authorization-url',
        `${op.issuer}/auth`,
        '--token-url',
        `${op.issuer}/token`,
        '--agent-connect',
        'device',
      ],
      '',
    );
    expect(added.code).not.toBe(0);
    expect(added.stderr).toContain('connect_device_unsupported');
  });

  it('gives the SDK the device fields on authorization_required', async () => {
    const vault = createVaultClient({ url, agentId: 'helper', token: agent.apiKey, retries: 0 });
    const error = await vault.getCredential('headless', { user: 'gus' }).catch((e: unknown) => e);
    expect(isVaultClientError(error)).toBe(true);
    const { code, authorization } = error as VaultClientError;
    expect(code).toBe('authorization_required');
    expect(authorization).toMatchObject({
      flow: 'device',
      verificationUri: `${op.issuer}/device`,
      interval: 1,
    });
    expect(authorization?.userCode).toBeTruthy();
    expect(authorization?.verificationUriComplete).toBe(authorization?.connectUrl);

    await op.browser({ account: 'gus' }).approveDevice(authorization!.userCode!);
    const until = Date.now() + 15_000;
    let token: string | undefined;
    while (!token && Date.now() < until) {
      token = await vault.getCredential('headless', { user: 'gus' }).then(
        (c) => c.access_token,
        () => undefined,
      );
      if (!token) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(await op.introspect(token!)).toMatchObject({ active: true, sub: 'gus' });
  }, 30_000);

  it('keeps every device code out of the database, the logs, the audit trail and the answers', async () => {
    const codes = op.deviceCodes();
    expect(codes.length).toBeGreaterThanOrEqual(3);
    const audit = (await t.request('GET', '/v1/admin/audit/events?limit=1000')).text;
    const database = sqliteFiles(t).toString('latin1');
    for (const code of codes) {
      expect(database.includes(code), 'database').toBe(false);
      expect(t.logs().includes(code), 'logs').toBe(false);
      expect(audit.includes(code), 'audit').toBe(false);
      expect(bodies.join('\n').includes(code), 'answers').toBe(false);
    }
  });
});
