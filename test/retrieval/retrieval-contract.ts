import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { startTestVault, type TestVault, type TestVaultOptions } from '../helpers/vault.js';
import {
  addAgent,
  addCredential,
  breakAuditWrites,
  errorOf,
  grant,
  onlyAuditEventOf,
  retrieve,
  type TestAgent,
} from './retrieval-fixtures.js';

const slackKey = 'xoxb-retrieval-secret-1234';
const start = '2026-06-01T12:00:00.000Z';
const hours = (h: number) => new Date(Date.parse(start) + h * 3_600_000).toISOString();

/**
 * The agent retrieval path (seed contract) on one store, with an injected clock: each outcome has its
 * own code, the same refusal for "no grant" and "no such credential", and exactly one durable audit
 * event per request.
 */
export const retrievalContract = (
  storeOptions: () => Promise<TestVaultOptions & { cleanup?: () => Promise<void> }>,
) => {
  let t: TestVault;
  let cleanup: (() => Promise<void>) | undefined;
  const clock = fixedClock(start);
  let agent42: TestAgent;
  let agent7: TestAgent;

  beforeAll(async () => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    t = await startTestVault({ ...options, clock });
    await addCredential(t, {
      name: 'slack',
      type: 'api_key',
      secret: { api_key: slackKey },
      scopes: ['read', 'write'],
    });
    agent42 = await addAgent(t, 'agent-42');
    agent7 = await addAgent(t, 'agent-7');
    await grant(t, { agent: 'agent-42', credential: 'slack', until_revoked: true, reveal: true });
  });

  afterAll(async () => {
    await t?.stop();
    await cleanup?.();
  });

  describe('a reveal grant', () => {
    it('returns the seed contract’s JSON, no-store, and records one allow event', async () => {
      const response = await retrieve(
        t,
        agent42,
        { agent: 'agent-42', service: 'slack' },
        { 'user-agent': 'seed-test/1' },
      );
      expect(response.status, response.text).toBe(200);
      expect(response.body).toEqual({
        access_token: slackKey,
        token_type: 'Bearer',
        expires_at: null,
        scopes: ['read', 'write'],
      });
      expect(response.headers['cache-control']).toBe('no-store');
      const event = await onlyAuditEventOf(t, response);
      expect(event).toMatchObject({
        action: 'credential.retrieve',
        actor_type: 'agent',
        actor_id: agent42.id,
        target_type: 'credential',
        target_id: 'slack',
        decision: 'allow',
        reason: 'ok',
        user_agent: 'seed-test/1',
        namespace: 'default',
      });
      expect(event.client_ip).toBeTruthy();
      expect(event.details).toMatchObject({
        auth_method: 'api_key',
        scopes: ['read', 'write'],
        requested_scopes: [],
      });
      expect(JSON.stringify(event)).not.toContain(slackKey);
    });

    it('answers to the agent’s id as well as its name', async () => {
      const response = await retrieve(t, agent42, { agent: agent42.id, service: 'slack' });
      expect(response.status).toBe(200);
    });

    it('narrows scopes with ?scope= and refuses widening', async () => {
      const narrowed = await retrieve(t, agent42, {
        agent: 'agent-42',
        service: 'slack',
        query: '?scope=read',
      });
      expect(narrowed.status).toBe(200);
      expect((narrowed.body as { scopes: string[] }).scopes).toEqual(['read']);
      const both = await retrieve(t, agent42, {
        agent: 'agent-42',
        service: 'slack',
        query: '?scope=read&scope=write',
      });
      expect((both.body as { scopes: string[] }).scopes).toEqual(['read', 'write']);
      const wider = await retrieve(t, agent42, {
        agent: 'agent-42',
        service: 'slack',
        query: '?scope=read,admin',
      });
      expect(wider.status).toBe(403);
      expect(errorOf(wider.body)).toMatchObject({ code: 'scope_not_granted' });
      expect(errorOf(wider.body).message).toContain('"admin"');
      expect(wider.text).not.toContain(slackKey);
      expect(await onlyAuditEventOf(t, wider)).toMatchObject({
        decision: 'deny',
        reason: 'scope_not_granted',
      });
    });

    it('never puts the secret in a log line', () => {
      expect(t.logs()).not.toContain(slackKey);
    });
  });

  describe('refusals, each with its own code and one deny event', () => {
    it('gives no grant and no such credential the same answer', async () => {
      await addCredential(t, { name: 'github', type: 'bearer', secret: { token: 'ghp-x' } });
      const noGrant = await retrieve(t, agent42, { agent: 'agent-42', service: 'github' });
      const noCredential = await retrieve(t, agent42, { agent: 'agent-42', service: 'does-not-exist' });
      for (const response of [noGrant, noCredential]) {
        expect(response.status).toBe(403);
        expect(errorOf(response.body).code).toBe('credential_not_granted');
        expect(Object.keys(response.body as object)).toEqual(['error']);
        expect(Object.keys(errorOf(response.body)).sort()).toEqual(['code', 'message', 'request_id']);
        expect(await onlyAuditEventOf(t, response)).toMatchObject({
          decision: 'deny',
          reason: 'credential_not_granted',
        });
      }
      expect(errorOf(noGrant.body).message).toBe(errorOf(noCredential.body).message);
      expect(errorOf(noGrant.body).message).not.toContain('github');
    });

    it('refuses another agent’s id in the path', async () => {
      for (const other of ['agent-7', agent7.id]) {
        const response = await retrieve(t, agent42, { agent: other, service: 'slack' });
        expect(response.status).toBe(403);
        expect(errorOf(response.body).code).toBe('agent_mismatch');
        expect(await onlyAuditEventOf(t, response)).toMatchObject({
          actor_id: agent42.id,
          decision: 'deny',
          reason: 'agent_mismatch',
        });
      }
    });

    it('refuses an expired grant once the clock passes its expiry', async () => {
      await addCredential(t, { name: 'short', type: 'api_key', secret: { api_key: 'short-lived' } });
      const created = await grant(t, { agent: 'agent-42', credential: 'short', ttl: '1h', reveal: true });
      expect(created.expires_at).toBe(hours(1));
      const before = await retrieve(t, agent42, { agent: 'agent-42', service: 'short' });
      expect(before.status).toBe(200);
      expect((before.body as { expires_at: string }).expires_at).toBe(hours(1));
      clock.set(hours(1));
      try {
        const after = await retrieve(t, agent42, { agent: 'agent-42', service: 'short' });
        expect(after.status).toBe(403);
        expect(errorOf(after.body).code).toBe('grant_expired');
        expect(await onlyAuditEventOf(t, after)).toMatchObject({ decision: 'deny', reason: 'grant_expired' });
      } finally {
        clock.set(start);
      }
    });

    it('refuses a revoked grant on the very next request', async () => {
      await addCredential(t, { name: 'revocable', type: 'api_key', secret: { api_key: 'rev-1' } });
      const created = await grant(t, {
        agent: 'agent-42',
        credential: 'revocable',
        until_revoked: true,
        reveal: true,
      });
      expect((await retrieve(t, agent42, { agent: 'agent-42', service: 'revocable' })).status).toBe(200);
      expect((await t.request('DELETE', `/v1/admin/grants/${created.id}`)).status).toBe(200);
      const after = await retrieve(t, agent42, { agent: 'agent-42', service: 'revocable' });
      expect(after.status).toBe(403);
      expect(errorOf(after.body).code).toBe('grant_revoked');
      expect(await onlyAuditEventOf(t, after)).toMatchObject({ decision: 'deny', reason: 'grant_revoked' });
    });

    it('points a proxy-only grant at the proxy', async () => {
      await addCredential(t, { name: 'proxied', type: 'api_key', secret: { api_key: 'proxy-only-secret' } });
      await grant(t, { agent: 'agent-42', credential: 'proxied', until_revoked: true });
      const response = await retrieve(t, agent42, { agent: 'agent-42', service: 'proxied' });
      expect(response.status).toBe(403);
      expect(errorOf(response.body).code).toBe('reveal_not_granted');
      expect(errorOf(response.body).message).toContain('/v1/proxy/');
      expect(response.text).not.toContain('proxy-only-secret');
      expect(await onlyAuditEventOf(t, response)).toMatchObject({ reason: 'reveal_not_granted' });
    });

    it('refuses a credential that needs re-authorization, is revoked or has expired', async () => {
      const cases = [
        { name: 'reauth', patch: { status: 'needs_reauth' }, status: 409, code: 'credential_needs_reauth' },
        { name: 'dead', patch: { status: 'revoked' }, status: 403, code: 'credential_revoked' },
        { name: 'stale', patch: { expires_at: hours(-1) }, status: 403, code: 'credential_expired' },
      ];
      for (const c of cases) {
        await addCredential(t, { name: c.name, type: 'api_key', secret: { api_key: `${c.name}-secret` } });
        await grant(t, { agent: 'agent-42', credential: c.name, until_revoked: true, reveal: true });
        expect((await t.request('PATCH', `/v1/admin/credentials/${c.name}`, { body: c.patch })).status).toBe(
          200,
        );
        const response = await retrieve(t, agent42, { agent: 'agent-42', service: c.name });
        expect(response.status, c.name).toBe(c.status);
        expect(errorOf(response.body).code).toBe(c.code);
        expect(await onlyAuditEventOf(t, response)).toMatchObject({ decision: 'deny', reason: c.code });
      }
    });

    it('refuses a disabled agent, and a missing or wrong key, recording the refusal', async () => {
      const disabled = await addAgent(t, 'agent-off');
      await grant(t, { agent: 'agent-off', credential: 'slack', until_revoked: true, reveal: true });
      expect((await t.request('POST', '/v1/admin/agents/agent-off/disable')).status).toBe(200);
      const refused = await retrieve(t, disabled, { agent: 'agent-off', service: 'slack' });
      expect(refused.status).toBe(403);
      expect(errorOf(refused.body).code).toBe('agent_disabled');
      expect(await onlyAuditEventOf(t, refused)).toMatchObject({
        decision: 'deny',
        reason: 'agent_disabled',
      });

      const none = await retrieve(t, { token: null }, { agent: 'agent-42', service: 'slack' });
      expect(none.status).toBe(401);
      expect(errorOf(none.body).code).toBe('agent_unauthenticated');
      const wrong = await retrieve(
        t,
        { token: 'tv_agent_notarealkeyatall' },
        { agent: 'agent-42', service: 'slack' },
      );
      expect(wrong.status).toBe(401);
      expect(await onlyAuditEventOf(t, wrong)).toMatchObject({
        decision: 'deny',
        reason: errorOf(wrong.body).code,
      });
    });
  });

  describe('what each credential type returns', () => {
    it('maps bearer, basic, oauth2 and custom onto access_token and token_type', async () => {
      await addCredential(t, { name: 'bear', type: 'bearer', secret: { token: 'tok-1' } });
      await addCredential(t, { name: 'jira', type: 'basic', secret: { username: 'bot', password: 'pw' } });
      await addCredential(t, {
        name: 'gcal',
        type: 'oauth2',
        secret: { access_token: 'ya29.x', refresh_token: 'rt-secret', token_type: 'Bearer' },
        scopes: ['events.readonly', 'events'],
        expires_at: hours(2),
      });
      await addCredential(t, {
        name: 'pair',
        type: 'custom',
        secret: { app_id: 'id-1', app_secret: 'sec-1' },
      });
      for (const name of ['bear', 'jira', 'gcal', 'pair']) {
        await grant(t, { agent: 'agent-42', credential: name, ttl: '30d', reveal: true });
      }
      const get = async (service: string, query = '') =>
        (await retrieve(t, agent42, { agent: 'agent-42', service, query })).body;
      expect(await get('bear')).toEqual({
        access_token: 'tok-1',
        token_type: 'Bearer',
        expires_at: hours(720),
        scopes: [],
      });
      expect(await get('jira')).toMatchObject({
        access_token: Buffer.from('bot:pw').toString('base64'),
        token_type: 'Basic',
      });
      const gcal = await get('gcal', '?scope=events.readonly');
      // The credential expires before the grant: the earlier one wins. The refresh token never leaves.
      expect(gcal).toEqual({
        access_token: 'ya29.x',
        token_type: 'Bearer',
        expires_at: hours(2),
        scopes: ['events.readonly'],
      });
      expect(JSON.stringify(gcal)).not.toContain('rt-secret');
      // The default injection of a custom credential sends the field named like a secret, not the id.
      expect(await get('pair')).toEqual({
        access_token: 'sec-1',
        token_type: 'Bearer',
        expires_at: hours(720),
        scopes: [],
        fields: { app_id: 'id-1', app_secret: 'sec-1' },
      });
    });
  });

  describe('the kill switch', () => {
    it('revokes every key and grant of the namespace at once; only new ones undo it', async () => {
      const namespace = 'kill-switch';
      const headers = { 'x-tokenvault-namespace': namespace };
      await addCredential(t, { name: 'slack', type: 'api_key', secret: { api_key: 'ks-secret' } }, namespace);
      const agent = await addAgent(t, 'agent-42', namespace);
      await grant(
        t,
        { agent: 'agent-42', credential: 'slack', until_revoked: true, reveal: true },
        namespace,
      );
      expect((await retrieve(t, agent, { agent: 'agent-42', service: 'slack' })).status).toBe(200);

      const killed = await t.request('POST', '/v1/admin/revoke-all', { body: {}, headers });
      expect(killed.status, killed.text).toBe(200);
      expect(killed.body).toMatchObject({ namespace, grants_revoked: 1, agent_keys_revoked: 1 });

      const refused = await retrieve(t, agent, { agent: 'agent-42', service: 'slack' });
      expect(refused.status).toBe(401);
      expect(errorOf(refused.body).code).toBe('agent_key_revoked');
      // The default namespace is untouched.
      expect((await retrieve(t, agent42, { agent: 'agent-42', service: 'slack' })).status).toBe(200);

      const newKey = await t.request('POST', '/v1/admin/agents/agent-42/keys', {
        body: { name: 'after' },
        headers,
      });
      expect(newKey.status, newKey.text).toBe(201);
      const rekeyed = { apiKey: (newKey.body as { api_key: string }).api_key };
      const stillNoGrant = await retrieve(t, rekeyed, { agent: 'agent-42', service: 'slack' });
      expect(errorOf(stillNoGrant.body).code).toBe('grant_revoked');
      await grant(
        t,
        { agent: 'agent-42', credential: 'slack', until_revoked: true, reveal: true },
        namespace,
      );
      expect((await retrieve(t, rekeyed, { agent: 'agent-42', service: 'slack' })).status).toBe(200);
    });
  });

  describe('fail closed', () => {
    it('answers 503 audit_unavailable, with no secret, when the event cannot be written', async () => {
      const repair = await breakAuditWrites(t);
      try {
        const allowed = await retrieve(t, agent42, { agent: 'agent-42', service: 'slack' });
        expect(allowed.status).toBe(503);
        expect(errorOf(allowed.body).code).toBe('audit_unavailable');
        expect(allowed.text).not.toContain(slackKey);
        const denied = await retrieve(t, agent42, { agent: 'agent-42', service: 'github' });
        expect(denied.status).toBe(503);
        expect(errorOf(denied.body).code).toBe('audit_unavailable');
      } finally {
        await repair();
      }
      expect((await retrieve(t, agent42, { agent: 'agent-42', service: 'slack' })).status).toBe(200);
    });
  });
};
