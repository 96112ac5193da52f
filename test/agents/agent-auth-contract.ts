import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { startTestVault, type TestVault, type TestVaultOptions } from '../helpers/vault.js';
import {
  admin,
  audience,
  authRefusals,
  codeOf,
  type CreatedAgent,
  createAgent,
  newSigningKey,
  serveJwks,
  type SigningKey,
  signAssertion,
  startAuthProbe,
  unsignedToken,
} from './agent-fixtures.js';
import { startOidcIssuer, type TestIssuer } from './oidc-issuer.js';

type Probe = Awaited<ReturnType<typeof startAuthProbe>>;

/**
 * Agent authentication on one store, through the real `authenticateAgent`: API keys, signed JWT
 * assertions and OIDC workload tokens from a real issuer. Every refusal has its own code and leaves
 * one `agent.authenticate` deny event naming the client; nothing is cached, so changes hold at once.
 */
export const agentAuthContract = (
  storeOptions: () => Promise<TestVaultOptions & { cleanup?: () => Promise<void> }>,
) => {
  let t: TestVault;
  let cleanup: (() => Promise<void>) | undefined;
  // Starts at the real time: the OIDC issuer stamps its tokens with the real clock.
  const clock = fixedClock(new Date());
  let probe: Probe;
  let agent: CreatedAgent;

  beforeAll(async () => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    // The local issuer and key sets listen on loopback, which the outbound guard refuses unless allowed.
    t = await startTestVault({ ...options, clock, settings: { audience, outboundAllow: '127.0.0.1' } });
    probe = await startAuthProbe(t, clock);
    agent = await createAgent(t, 'agent-42');
  });

  afterAll(async () => {
    await probe?.app.close();
    await t?.stop();
    await cleanup?.();
  });

  /** Asserts the refusal and that it was audited once more, with the request's client and id. */
  const expectRefused = async (token: string | null, status: number, code: string, ip = '203.0.113.7') => {
    const before = (await authRefusals(t)).length;
    const answer = await probe.whoami(token, { ip, userAgent: `refusal-test ${code}` });
    expect(answer.status, answer.text).toBe(status);
    expect(codeOf(answer.body)).toBe(code);
    const events = await authRefusals(t);
    expect(events).toHaveLength(before + 1);
    const event = events.at(-1)!;
    expect(event).toMatchObject({
      decision: 'deny',
      reason: code,
      client_ip: ip,
      user_agent: `refusal-test ${code}`,
      request_id: (answer.body as { error: { request_id: string } }).error.request_id,
    });
    // Whatever was presented never reaches the audit log.
    if (token) expect(JSON.stringify(event)).not.toContain(token.slice(-20));
    return event;
  };

  describe('OIDC workload tokens from a real issuer', () => {
    let trusted: TestIssuer;
    let untrusted: TestIssuer;

    beforeAll(async () => {
      clock.set(new Date());
      const claims = {
        'ci-main': { repository: 'acme/app', ref: 'refs/heads/main' },
        'ci-other': { repository: 'acme/other', ref: 'refs/heads/main' },
      };
      trusted = await startOidcIssuer(claims);
      untrusted = await startOidcIssuer(claims);
      const trust = await admin(t, 'POST', '/v1/admin/issuers', { name: 'ci', issuer: trusted.issuer });
      expect(trust.status, trust.text).toBe(201);
      expect(trust.body).toMatchObject({ name: 'ci', issuer: trusted.issuer, audience });
      const bind = await admin(t, 'POST', '/v1/admin/agents/agent-42/bindings', {
        issuer: 'ci',
        claims: { sub: 'ci-main', repository: 'acme/app' },
      });
      expect(bind.status, bind.text).toBe(201);
    });

    afterAll(async () => {
      await trusted?.stop();
      await untrusted?.stop();
    });

    it('maps a trusted issuer’s token with bound claims to the agent', async () => {
      const answer = await probe.whoami(await trusted.token('ci-main', audience));
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body).toEqual({
        agentId: agent.id,
        agentName: 'agent-42',
        namespace: 'default',
        method: 'oidc',
        credentialRef: 'ci',
      });
    });

    it('refuses a token from an issuer it does not trust, without fetching anything from it', async () => {
      const token = await untrusted.token('ci-main', audience);
      const event = await expectRefused(token, 401, 'issuer_untrusted');
      expect(event.actor_type).toBe('anonymous');
    });

    it('refuses a valid token whose claims match no binding', async () => {
      await expectRefused(await trusted.token('ci-other', audience), 401, 'workload_not_bound');
    });

    it('refuses a token issued for another audience', async () => {
      await expectRefused(
        await trusted.token('ci-main', 'https://elsewhere.test'),
        401,
        'jwt_audience_invalid',
      );
    });

    it('refuses a forged token that names the trusted issuer', async () => {
      const forged = unsignedToken({
        iss: trusted.issuer,
        sub: 'ci-main',
        aud: audience,
        exp: 9_999_999_999,
      });
      await expectRefused(forged, 401, 'jwt_invalid');
    });

    it('stops trusting at once when the issuer is removed (its bindings go too)', async () => {
      const token = await trusted.token('ci-main', audience);
      expect((await admin(t, 'DELETE', '/v1/admin/issuers/ci')).status).toBe(204);
      await expectRefused(token, 401, 'issuer_untrusted');
      expect((await admin(t, 'GET', '/v1/admin/agents/agent-42/bindings')).body).toEqual({ items: [] });
    });
  });

  describe('API keys', () => {
    it('authenticates the agent by its key, by id and name, with the key id as reference', async () => {
      const answer = await probe.whoami(agent.api_key);
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body).toEqual({
        agentId: agent.id,
        agentName: 'agent-42',
        namespace: 'default',
        method: 'api_key',
        credentialRef: agent.key_id,
      });
    });

    it('refuses a missing token and an unknown key, each with its own code', async () => {
      await expectRefused(null, 401, 'agent_unauthenticated');
      const event = await expectRefused(
        `tv_agent_${randomBytes(32).toString('base64url')}`,
        401,
        'agent_key_invalid',
      );
      expect(event).toMatchObject({ actor_type: 'anonymous', actor_id: null });
      await expectRefused(t.rootToken, 401, 'agent_key_invalid');
    });

    it('refuses a revoked key on the very next request, naming the agent in the audit record', async () => {
      const created = await admin(t, 'POST', '/v1/admin/agents/agent-42/keys', { name: 'rotating' });
      const key = created.body as { id: string; api_key: string };
      expect((await probe.whoami(key.api_key)).status).toBe(200);
      expect((await admin(t, 'DELETE', `/v1/admin/agents/agent-42/keys/${key.id}`)).status).toBe(200);
      const event = await expectRefused(key.api_key, 401, 'agent_key_revoked');
      expect(event).toMatchObject({ actor_type: 'agent', actor_id: agent.id, namespace: 'default' });
      expect(JSON.parse(event.details)).toMatchObject({ method: 'api_key', key_id: key.id });
      // The first key is unaffected: several keys at once is what makes rotation possible.
      expect((await probe.whoami(agent.api_key)).status).toBe(200);
    });

    it('refuses an expired key once the injected clock passes its expiry', async () => {
      const created = await admin(t, 'POST', '/v1/admin/agents/agent-42/keys', { ttl: '1h' });
      const key = created.body as { api_key: string; expires_at: string };
      expect(Date.parse(key.expires_at) - clock.now().getTime()).toBe(3_600_000);
      expect((await probe.whoami(key.api_key)).status).toBe(200);
      clock.advance(3_600_000);
      await expectRefused(key.api_key, 401, 'agent_key_expired');
      expect((await probe.whoami(agent.api_key)).status).toBe(200);
    });

    it('refuses every key of a disabled agent until it is enabled again', async () => {
      expect((await admin(t, 'POST', '/v1/admin/agents/agent-42/disable')).status).toBe(200);
      await expectRefused(agent.api_key, 403, 'agent_disabled');
      expect((await admin(t, 'POST', '/v1/admin/agents/agent-42/enable')).status).toBe(200);
      expect((await probe.whoami(agent.api_key)).status).toBe(200);
    });

    it('is refused and audited the same way on the agent retrieval route', async () => {
      const created = await admin(t, 'POST', '/v1/admin/agents/agent-42/keys', {});
      const key = created.body as { id: string; api_key: string };
      await admin(t, 'DELETE', `/v1/admin/agents/agent-42/keys/${key.id}`);
      const answer = await t.request('GET', '/v1/agents/agent-42/credentials/slack', { token: key.api_key });
      expect(answer.status).toBe(401);
      expect(codeOf(answer.body)).toBe('agent_key_revoked');
      const requestId = answer.headers['x-request-id'] as string;
      const events = await t.vault.store.db
        .selectFrom('audit_events')
        .select(['action', 'reason'])
        .where('request_id', '=', requestId)
        .execute();
      expect(events).toEqual([{ action: 'agent.authenticate', reason: 'agent_key_revoked' }]);
    });

    it('limits failures per address and presented key with a separate limiter', async () => {
      const limited = await startAuthProbe(t, clock, 3);
      try {
        for (let i = 0; i < 3; i += 1)
          expect((await limited.whoami('tv_agent_wrong', { ip: '198.51.100.9' })).status).toBe(401);
        const blocked = await limited.whoami('tv_agent_wrong', { ip: '198.51.100.9' });
        expect(blocked.status).toBe(429);
        expect(codeOf(blocked.body)).toBe('too_many_auth_failures');
        // One revoked or wrong key does not lock every agent on the host out.
        expect((await limited.whoami(agent.api_key, { ip: '198.51.100.9' })).status).toBe(200);
        // Many different wrong keys do: above the per-address ceiling (3 × 10) every key waits.
        for (let i = 0; i < 27; i += 1)
          expect((await limited.whoami(`tv_agent_guess${i}`, { ip: '198.51.100.9' })).status).toBe(401);
        expect((await limited.whoami(agent.api_key, { ip: '198.51.100.9' })).status).toBe(429);
        expect((await limited.whoami(agent.api_key, { ip: '198.51.100.10' })).status).toBe(200);
      } finally {
        await limited.app.close();
      }
    });
  });

  describe('JWT client assertions', () => {
    let key: SigningKey;

    beforeAll(async () => {
      key = await newSigningKey();
      const registered = await admin(t, 'PUT', '/v1/admin/agents/agent-42/jwks', {
        jwks: { keys: [key.publicJwk] },
      });
      expect(registered.status, registered.text).toBe(200);
    });

    const assertion = (claims: Partial<Parameters<typeof signAssertion>[1]> = {}, signer = key) =>
      signAssertion(signer, { agentId: agent.id, now: clock.now(), ...claims });

    it('accepts an ES256 assertion signed with the registered key, once', async () => {
      const token = await assertion({ jti: 'first-use' });
      const answer = await probe.whoami(token);
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body).toEqual({
        agentId: agent.id,
        agentName: 'agent-42',
        namespace: 'default',
        method: 'jwt',
        credentialRef: 'first-use',
      });
      await expectRefused(token, 401, 'jwt_replayed');
    });

    it('refuses a wrong audience, an expired assertion and one that lives too long', async () => {
      await expectRefused(await assertion({ aud: 'https://other-vault.test' }), 401, 'jwt_audience_invalid');
      await expectRefused(
        await assertion({ iat: Math.floor(clock.now().getTime() / 1000) - 600, expIn: -120 }),
        401,
        'jwt_expired',
      );
      await expectRefused(await assertion({ expIn: 600 }), 401, 'jwt_lifetime_too_long');
      expect((await probe.whoami(await assertion({ expIn: 300 }))).status).toBe(200);
    });

    it('expires assertions by the injected clock', async () => {
      const token = await assertion({ expIn: 60 });
      clock.advance(120_000);
      await expectRefused(token, 401, 'jwt_expired');
    });

    it('refuses a key it does not know, alg none, HMAC, and iss ≠ sub', async () => {
      await expectRefused(await assertion({}, await newSigningKey(key.kid)), 401, 'jwt_invalid');
      await expectRefused(await assertion({}, await newSigningKey('unregistered')), 401, 'jwt_invalid');
      const now = Math.floor(clock.now().getTime() / 1000);
      const claims = { iss: agent.id, sub: agent.id, aud: audience, iat: now, exp: now + 60 };
      await expectRefused(unsignedToken({ ...claims, jti: 'none-1' }), 401, 'jwt_invalid');
      const hmac = await new SignJWT({ ...claims, jti: 'hmac-1' })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode('a-shared-secret-that-must-not-work-000'));
      await expectRefused(hmac, 401, 'jwt_invalid');
      const mixed = await new SignJWT({ ...claims, sub: 'someone-else', jti: 'mixed-1' })
        .setProtectedHeader({ alg: 'ES256', kid: key.kid })
        .sign(key.privateKey);
      await expectRefused(mixed, 401, 'jwt_invalid');
      await expectRefused(await assertion({ iat: now + 3600 }), 401, 'jwt_invalid');
    });

    it('refuses assertions of a disabled agent', async () => {
      await admin(t, 'POST', '/v1/admin/agents/agent-42/disable');
      await expectRefused(await assertion(), 403, 'agent_disabled');
      await admin(t, 'POST', '/v1/admin/agents/agent-42/enable');
    });

    it('verifies against a JWKS URL, and refuses once the keys are cleared', async () => {
      const next = await newSigningKey();
      const served = await serveJwks({ keys: [next.publicJwk] });
      try {
        const set = await admin(t, 'PUT', '/v1/admin/agents/agent-42/jwks', { jwks_url: served.url });
        expect(set.status, set.text).toBe(200);
        expect((await probe.whoami(await assertion({}, next))).status).toBe(200);
        expect(served.requests()).toBeGreaterThan(0);
        // The old key was replaced, not added to.
        await expectRefused(await assertion(), 401, 'jwt_invalid');
        await admin(t, 'DELETE', '/v1/admin/agents/agent-42/jwks');
        await expectRefused(await assertion({}, next), 401, 'jwt_invalid');
      } finally {
        await served.stop();
      }
    });
  });

  describe('namespaces', () => {
    it('authenticates an agent of another namespace into its own namespace', async () => {
      const created = await admin(
        t,
        'POST',
        '/v1/admin/agents',
        { name: 'agent-42' },
        { 'x-tokenvault-namespace': 'team-b' },
      );
      expect(created.status, created.text).toBe(201);
      const other = created.body as CreatedAgent;
      expect(other.id).not.toBe(agent.id);
      const answer = await probe.whoami(other.api_key);
      expect(answer.body).toMatchObject({ agentId: other.id, namespace: 'team-b', agentName: 'agent-42' });
    });
  });
};
