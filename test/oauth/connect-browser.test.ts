import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAgainst } from '../helpers/cli-in-process.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, errorOf, retrieve, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { addOidcApp, freePort } from './oauth-app-fixture.js';

const codeOf = (page: { body: string }) => /data-error-code="([a-z_]+)"/.exec(page.body)?.[1];

/**
 * Issue 13 item 3, end to end against a real OpenID Provider: `tokenvault connect` prints a link, a
 * person (the test's browser, signing in and consenting at the provider) follows it, and the agent's
 * retrieval with `?user=` returns the token the provider issued. Then every refusal: denied consent,
 * a replayed or foreign state, a used or expired link; and the agent-initiated flow.
 */
describe('browser consent through the CLI’s link', () => {
  let op: TestOAuthServer;
  let t: TestVault;
  let cli: ReturnType<typeof cliAgainst>;
  let agent: TestAgent;
  let publicUrl: string;

  beforeAll(async () => {
    const port = await freePort();
    publicUrl = `http://127.0.0.1:${port}`;
    op = await startOAuthServer({ accessTokenTtl: 120, redirectUris: [`${publicUrl}/v1/oauth/callback`] });
    t = await startTestVault({
      settings: { port: String(port), publicUrl, outboundAllow: '127.0.0.1', oauthAllowHttp: 'true' },
    });
    cli = cliAgainst(await t.vault.listen(), t.rootToken);
    await addOidcApp(cli, op, {
      name: 'local',
      scopes: 'openid offline_access api:read',
      flags: ['--agent-connect'],
    });
    agent = await addAgent(t, 'helper');
  });
  afterAll(async () => {
    await t?.stop();
    await op?.stop();
  });

  const connectLink = async (user: string) => {
    const made = await cli(['connect', 'local', '--agent', 'helper', '--user', user, '--reveal', '--json']);
    expect(made.code, made.stderr).toBe(0);
    const link = JSON.parse(made.stdout) as { id: string; url: string; expires_at: string };
    expect(Object.keys(link)).toEqual(['id', 'url', 'expires_at']);
    return link;
  };
  const tokenOf = async (user: string) => {
    const response = await retrieve(t, agent, { agent: 'helper', service: 'local', query: `?user=${user}` });
    return { status: response.status, body: response.body as Record<string, unknown> };
  };

  it('connects alice: consent page, provider login and consent, token stored, grant made', async () => {
    const link = await connectLink('alice');
    expect(link.url).toMatch(new RegExp(`^${publicUrl}/connect/[A-Za-z0-9_-]{40,}$`));
    const browser = op.browser({ account: 'alice' });

    const page = await browser.get(link.url);
    expect(page.status).toBe(200);
    expect(page.body).toContain('helper');
    expect(page.body).toContain('api:read');

    const before = op.tokenRequests('authorization_code');
    const done = await browser.post(link.url, {});
    expect(done.status, done.body).toBe(200);
    expect(done.url).toContain('/v1/oauth/callback');
    expect(done.body).toContain('Connected');
    expect(op.tokenRequests('authorization_code')).toBe(before + 1);

    const { status, body } = await tokenOf('alice');
    expect(status).toBe(200);
    const introspected = await op.introspect(body.access_token as string);
    expect(introspected).toMatchObject({ active: true, sub: 'alice', client_id: op.client.client_id });

    const shown = await t.request('GET', '/v1/admin/credentials/local?user=alice');
    expect(shown.body).toMatchObject({ type: 'oauth2', subject: 'alice', status: 'active' });
    const session = await t.request('GET', `/v1/admin/connect/${link.id}`);
    expect(session.body).toMatchObject({ status: 'completed', error_code: null });

    // The same callback again (a replayed state) and the same link again: both refused.
    const replay = await browser.get(done.url);
    expect([replay.status, codeOf(replay)]).toEqual([409, 'connect_session_used']);
    const again = await browser.get(link.url);
    expect([again.status, codeOf(again)]).toEqual([409, 'connect_session_used']);

    // Canary: nothing the provider gave, nor the client secret, in the clear anywhere.
    const { secret } = await t.vault.services.credentials.readSecret('default', 'local', { user: 'alice' });
    const code = new URL(done.url).searchParams.get('code') ?? '';
    const secrets = [
      secret.access_token,
      secret.refresh_token,
      secret.id_token,
      op.client.client_secret,
      code,
    ];
    expect(secrets.every((s) => typeof s === 'string' && s.length > 10)).toBe(true);
    const events = (await t.request('GET', '/v1/admin/audit/events?limit=1000')).text;
    for (const s of secrets as string[]) {
      expect(t.logs()).not.toContain(s);
      expect(events).not.toContain(s);
      for (const file of readdirSync(t.dataDir).filter((f) => f.startsWith('tokenvault.db'))) {
        expect(readFileSync(join(t.dataDir, file)).includes(s), file).toBe(false);
      }
    }
    expect(events).toContain('connect.complete');
  });

  it('shows a clear page, a stable code and an audit event for each refusal', async () => {
    const denied = await connectLink('bob');
    const page = await op.browser({ account: 'bob', deny: true }).post(denied.url, {});
    expect([page.status, codeOf(page)]).toEqual([403, 'connect_denied']);
    expect((await tokenOf('bob')).status).toBe(403);

    const foreign = await op.browser().get(`${publicUrl}/v1/oauth/callback?state=not-ours&code=abc`);
    expect([foreign.status, codeOf(foreign)]).toEqual([400, 'connect_state_invalid']);
    const unknown = await op.browser().get(`${publicUrl}/connect/${'x'.repeat(43)}`);
    expect([unknown.status, codeOf(unknown)]).toEqual([404, 'connect_session_not_found']);

    const late = await connectLink('dave');
    await t.vault.store.db
      .updateTable('connect_sessions')
      .set({ expires_at: '2000-01-01T00:00:00.000Z' })
      .where('id', '=', late.id)
      .execute();
    const expired = await op.browser().get(late.url);
    expect([expired.status, codeOf(expired)]).toEqual([410, 'connect_session_expired']);

    const events = (await t.request('GET', '/v1/admin/audit/events?limit=1000')).body as {
      items: { action: string; decision: string; reason: string | null }[];
    };
    const refusals = events.items.filter((e) => e.action.startsWith('connect.') && e.decision === 'deny');
    expect(refusals.map((e) => e.reason).sort()).toEqual(
      expect.arrayContaining([
        'connect_denied',
        'connect_session_expired',
        'connect_session_not_found',
        'connect_session_used',
        'connect_state_invalid',
      ]),
    );
  });

  it('lets the agent ask for consent itself: authorization_required, then the token', async () => {
    const first = await tokenOf('carol');
    expect(first.status).toBe(403);
    const error = errorOf(first.body) as { code: string; connect_url?: string };
    expect(error.code).toBe('authorization_required');
    expect(error.connect_url).toMatch(new RegExp(`^${publicUrl}/connect/`));
    // Asking again before the user acts gives the same link, not a new session each time.
    expect((errorOf((await tokenOf('carol')).body) as { connect_url?: string }).connect_url).toBe(
      error.connect_url,
    );

    const done = await op.browser({ account: 'carol' }).post(error.connect_url!, {});
    expect(done.body).toContain('Connected');
    const after = await tokenOf('carol');
    expect(after.status).toBe(200);
    expect(await op.introspect(after.body.access_token as string)).toMatchObject({
      active: true,
      sub: 'carol',
    });
    // Alice's connection is still hers.
    const alice = await tokenOf('alice');
    expect(await op.introspect(alice.body.access_token as string)).toMatchObject({ sub: 'alice' });
  });
});
