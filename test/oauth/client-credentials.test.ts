import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAgainst } from '../helpers/cli-in-process.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, retrieve, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { addOidcApp } from './oauth-app-fixture.js';

/**
 * Issue 13 item 4: a client-credentials credential. No person is involved: the vault fetches the
 * app's own token when asked (`connect --client-credentials`) and fetches a new one before it expires.
 */
describe('client-credentials credentials', () => {
  let op: TestOAuthServer;
  let t: TestVault;
  let cli: ReturnType<typeof cliAgainst>;
  let agent: TestAgent;

  beforeAll(async () => {
    op = await startOAuthServer({ accessTokenTtl: 30 });
    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1', oauthAllowHttp: 'true' } });
    cli = cliAgainst(await t.vault.listen(), t.rootToken);
    await addOidcApp(cli, op, { name: 'api', scopes: 'api:read' });
    agent = await addAgent(t, 'batch');
  });
  afterAll(async () => {
    await t?.stop();
    await op?.stop();
  });

  const token = async () => {
    const response = await retrieve(t, agent, { agent: 'batch', service: 'api' });
    expect(response.status, response.text).toBe(200);
    return (response.body as { access_token: string }).access_token;
  };

  it('fetches the app’s token, grants it, and renews it before it expires', async () => {
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
    expect(op.tokenSuccesses('client_credentials')).toBe(1);

    const first = await token();
    expect(await op.introspect(first)).toMatchObject({
      active: true,
      client_id: op.client.client_id,
      scope: 'api:read',
    });
    const shown = await t.request('GET', '/v1/admin/credentials/api');
    expect(shown.body).toMatchObject({ type: 'oauth2', subject: null });

    // Not yet within the margin: nothing to do. Within it (30 s left < 60 s): a new token.
    expect(await t.vault.services.connect.renewDue(10)).toBe(0);
    expect(await t.vault.services.connect.renewDue(60)).toBe(1);
    expect(op.tokenSuccesses('client_credentials')).toBe(2);
    const second = await token();
    expect(second).not.toBe(first);
    expect(await op.introspect(second)).toMatchObject({ active: true, client_id: op.client.client_id });
    expect(t.logs()).not.toContain(second);
  });
});
