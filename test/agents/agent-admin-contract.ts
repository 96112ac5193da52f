import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { startTestVault, type TestVault, type TestVaultOptions } from '../helpers/vault.js';
import { admin, codeOf, type CreatedAgent, createAgent, eventsOf, newSigningKey } from './agent-fixtures.js';
import { startOidcIssuer, type TestIssuer } from './oidc-issuer.js';

const start = '2026-06-01T12:00:00.000Z';

/**
 * The agent admin API on one store: agents, their keys and registered public keys, trusted issuers
 * and workload bindings. Each change is audited in its transaction with the admin as actor; each
 * refusal has its own code, is audited as a deny, and writes nothing.
 */
export const agentAdminContract = (
  storeOptions: () => Promise<TestVaultOptions & { cleanup?: () => Promise<void> }>,
) => {
  let t: TestVault;
  let cleanup: (() => Promise<void>) | undefined;
  const clock = fixedClock(start);
  let bot: CreatedAgent;

  beforeAll(async () => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    // The local issuer and key sets listen on loopback, which the outbound guard refuses unless allowed.
    t = await startTestVault({ ...options, clock, settings: { outboundAllow: '127.0.0.1' } });
    bot = await createAgent(t, 'bot-1', { description: 'nightly report' });
  });

  afterAll(async () => {
    await t?.stop();
    await cleanup?.();
  });

  const count = async (table: 'agents' | 'agent_keys' | 'workload_bindings' | 'trusted_issuers') =>
    Number(
      (
        await t.vault.store.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number | string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  describe('agents', () => {
    it('creates an agent with a first key that is shown once and stored only as a hash', async () => {
      expect(bot.api_key).toMatch(/^tv_agent_[A-Za-z0-9_-]{43}$/);
      const rows = await t.vault.store.db
        .selectFrom('agent_keys')
        .selectAll()
        .where('agent_id', '=', bot.id)
        .execute();
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(bot.api_key);
      expect(rows[0]?.key_hash).toMatch(/^[0-9a-f]{64}$/);
      const shown = await admin(t, 'GET', `/v1/admin/agents/${bot.id}`);
      expect(shown.body).toMatchObject({
        id: bot.id,
        name: 'bot-1',
        status: 'active',
        description: 'nightly report',
      });
      expect(shown.text).not.toContain('tv_agent_');
      const [event] = await eventsOf(t, 'agent.create');
      expect(event).toMatchObject({
        actor_type: 'admin',
        target_id: bot.id,
        decision: 'allow',
        reason: 'ok',
      });
    });

    it('keeps names unique per namespace, and refuses bad names, each with its code', async () => {
      const before = await count('agents');
      const taken = await admin(t, 'POST', '/v1/admin/agents', { name: 'bot-1' });
      expect([taken.status, codeOf(taken.body)]).toEqual([409, 'agent_exists']);
      const bad = await admin(t, 'POST', '/v1/admin/agents', { name: 'Bot One' });
      expect([bad.status, codeOf(bad.body)]).toEqual([400, 'invalid_name']);
      const idShaped = await admin(t, 'POST', '/v1/admin/agents', { name: bot.id });
      expect([idShaped.status, codeOf(idShaped.body)]).toEqual([400, 'invalid_name']);
      expect(await count('agents')).toBe(before);
      const denied = (await eventsOf(t, 'agent.create')).filter((e) => e.decision === 'deny');
      expect(denied.map((e) => e.reason)).toEqual(['agent_exists', 'invalid_name', 'invalid_name']);
      const elsewhere = await admin(
        t,
        'POST',
        '/v1/admin/agents',
        { name: 'bot-1' },
        { 'x-tokenvault-namespace': 'team-b' },
      );
      expect(elsewhere.status).toBe(201);
    });

    it('shows by id or name, lists by name, and answers agent_not_found', async () => {
      await createAgent(t, 'alpha');
      expect((await admin(t, 'GET', '/v1/admin/agents/bot-1')).body).toMatchObject({ id: bot.id });
      const list = await admin(t, 'GET', '/v1/admin/agents?limit=1');
      expect(list.body).toMatchObject({ items: [{ name: 'alpha' }], next_cursor: 'alpha' });
      const next = await admin(t, 'GET', '/v1/admin/agents?limit=1&after=alpha');
      expect((next.body as { items: { name: string }[] }).items.map((a) => a.name)).toEqual(['bot-1']);
      const missing = await admin(t, 'GET', '/v1/admin/agents/nobody');
      expect([missing.status, codeOf(missing.body)]).toEqual([404, 'agent_not_found']);
      // Another namespace's agent is invisible, by name and by id.
      const other = await admin(t, 'GET', `/v1/admin/agents/${bot.id}`, undefined, {
        'x-tokenvault-namespace': 'team-b',
      });
      expect(other.status).toBe(404);
    });

    it('renames, disables and enables, each audited', async () => {
      const renamed = await admin(t, 'PATCH', '/v1/admin/agents/alpha', { name: 'alpha-2' });
      expect(renamed.body).toMatchObject({ name: 'alpha-2' });
      const clash = await admin(t, 'PATCH', '/v1/admin/agents/alpha-2', { name: 'bot-1' });
      expect([clash.status, codeOf(clash.body)]).toEqual([409, 'agent_exists']);
      expect((await admin(t, 'POST', '/v1/admin/agents/bot-1/disable')).body).toMatchObject({
        status: 'disabled',
      });
      expect((await admin(t, 'POST', '/v1/admin/agents/bot-1/enable')).body).toMatchObject({
        status: 'active',
      });
      expect((await eventsOf(t, 'agent.disable')).map((e) => [e.target_id, e.decision])).toEqual([
        [bot.id, 'allow'],
      ]);
      expect((await eventsOf(t, 'agent.enable')).map((e) => [e.target_id, e.decision])).toEqual([
        [bot.id, 'allow'],
      ]);
    });
  });

  describe('API keys', () => {
    it('creates more keys with an optional lifetime, lists them without secrets, revokes one', async () => {
      const created = await admin(t, 'POST', '/v1/admin/agents/bot-1/keys', { name: 'ci', ttl: '90d' });
      expect(created.status, created.text).toBe(201);
      const key = created.body as { id: string; api_key: string; expires_at: string; status: string };
      expect(key.api_key).toMatch(/^tv_agent_/);
      expect(key.expires_at).toBe('2026-08-30T12:00:00.000Z');
      expect(key.status).toBe('active');
      const listed = await admin(t, 'GET', '/v1/admin/agents/bot-1/keys');
      expect(listed.text).not.toContain('tv_agent_');
      expect(listed.text).not.toContain('hash');
      expect((listed.body as { items: unknown[] }).items).toHaveLength(2);
      const revoked = await admin(t, 'DELETE', `/v1/admin/agents/bot-1/keys/${key.id}`);
      expect(revoked.body).toMatchObject({ id: key.id, status: 'revoked' });
      clock.advance(91 * 86_400_000);
      const later = (await admin(t, 'GET', '/v1/admin/agents/bot-1/keys')).body as {
        items: { id: string; status: string }[];
      };
      expect(later.items.find((k) => k.id === key.id)?.status).toBe('revoked');
      expect((await eventsOf(t, 'agent.key.create')).at(-1)).toMatchObject({
        decision: 'allow',
        target_id: bot.id,
      });
      expect(JSON.parse((await eventsOf(t, 'agent.key.revoke')).at(-1)!.details)).toMatchObject({
        key_id: key.id,
      });
    });

    it('refuses an unknown key id, a bad lifetime, and another agent’s key', async () => {
      const unknown = await admin(
        t,
        'DELETE',
        '/v1/admin/agents/bot-1/keys/00000000-0000-4000-8000-000000000000',
      );
      expect([unknown.status, codeOf(unknown.body)]).toEqual([404, 'agent_key_not_found']);
      const badTtl = await admin(t, 'POST', '/v1/admin/agents/bot-1/keys', { ttl: 'forever' });
      expect([badTtl.status, codeOf(badTtl.body)]).toEqual([400, 'invalid_request']);
      const tooShort = await admin(t, 'POST', '/v1/admin/agents/bot-1/keys', { ttl: '10s' });
      expect([tooShort.status, codeOf(tooShort.body)]).toEqual([400, 'invalid_request']);
      const otherKey = (await admin(t, 'GET', '/v1/admin/agents/alpha-2/keys')).body as {
        items: { id: string }[];
      };
      const crossed = await admin(t, 'DELETE', `/v1/admin/agents/bot-1/keys/${otherKey.items[0]!.id}`);
      expect(crossed.status).toBe(404);
      const still = (await admin(t, 'GET', '/v1/admin/agents/alpha-2/keys')).body as {
        items: { status: string }[];
      };
      expect(still.items[0]?.status).toBe('active');
    });
  });

  describe('registered public keys', () => {
    it('stores a public JWK reduced to its public members', async () => {
      const key = await newSigningKey('bot-key-1');
      const set = await admin(t, 'PUT', '/v1/admin/agents/bot-1/jwks', {
        jwks: { ...key.publicJwk, ext: true },
      });
      expect(set.status, set.text).toBe(200);
      expect((set.body as { jwks: unknown }).jwks).toEqual({ keys: [key.publicJwk] });
      expect(JSON.parse((await eventsOf(t, 'agent.jwks.set')).at(-1)!.details)).toMatchObject({
        kids: ['bot-key-1'],
      });
    });

    it('refuses private or symmetric key material and stores nothing', async () => {
      const { privateKey } = await import('jose').then((jose) =>
        jose.generateKeyPair('ES256', { extractable: true }),
      );
      const privateJwk = await import('jose').then((jose) => jose.exportJWK(privateKey));
      const cases = [
        { jwks: { keys: [privateJwk] } },
        { jwks: { kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0' } },
        { jwks: { kty: 'EC', crv: 'P-384', x: 'abc', y: 'def' } },
        { jwks: { keys: [] } },
      ];
      for (const body of cases) {
        const refused = await admin(t, 'PUT', '/v1/admin/agents/bot-1/jwks', body);
        expect([refused.status, codeOf(refused.body)], JSON.stringify(body)).toEqual([
          400,
          'invalid_request',
        ]);
      }
      const privateRefusal = await admin(t, 'PUT', '/v1/admin/agents/bot-1/jwks', cases[0]);
      expect((privateRefusal.body as { error: { message: string } }).error.message).toMatch(/private/);
      const stored = await t.vault.store.db
        .selectFrom('agents')
        .select('jwks')
        .where('id', '=', bot.id)
        .executeTakeFirstOrThrow();
      expect(stored.jwks).not.toContain('"d"');
      expect(stored.jwks).toContain('bot-key-1');
    });

    it('accepts only https JWKS URLs (http on loopback), with no credentials', async () => {
      for (const url of [
        'http://keys.example.com/jwks',
        'https://user:pw@keys.example.com/jwks',
        'https://keys.example.com/jwks#x',
        'file:///etc/passwd',
      ]) {
        const refused = await admin(t, 'PUT', '/v1/admin/agents/bot-1/jwks', { jwks_url: url });
        expect([refused.status, codeOf(refused.body)], url).toEqual([400, 'invalid_request']);
      }
      const both = await admin(t, 'PUT', '/v1/admin/agents/bot-1/jwks', {
        jwks_url: 'https://keys.example.com/a',
        jwks: {},
      });
      expect(both.status).toBe(400);
      const set = await admin(t, 'PUT', '/v1/admin/agents/bot-1/jwks', {
        jwks_url: 'https://keys.example.com/jwks',
      });
      expect(set.body).toMatchObject({ jwks: null, jwks_url: 'https://keys.example.com/jwks' });
      const cleared = await admin(t, 'DELETE', '/v1/admin/agents/bot-1/jwks');
      expect(cleared.body).toMatchObject({ jwks: null, jwks_url: null });
    });
  });

  describe('trusted issuers and workload bindings', () => {
    let issuer: TestIssuer;

    beforeAll(async () => {
      issuer = await startOidcIssuer({ wl: {} });
    });
    afterAll(async () => {
      await issuer?.stop();
    });

    it('trusts an issuer after checking its discovery document, once per name', async () => {
      const trusted = await admin(t, 'POST', '/v1/admin/issuers', {
        name: 'ci',
        issuer: issuer.issuer,
        audience: 'https://vault.example',
      });
      expect(trusted.status, trusted.text).toBe(201);
      const again = await admin(t, 'POST', '/v1/admin/issuers', { name: 'ci', issuer: issuer.issuer });
      expect([again.status, codeOf(again.body)]).toEqual([409, 'issuer_exists']);
      expect((await admin(t, 'GET', '/v1/admin/issuers')).body).toMatchObject({
        items: [{ name: 'ci', audience: 'https://vault.example' }],
      });
      expect((await eventsOf(t, 'issuer.trust')).map((e) => [e.decision, e.reason])).toEqual([
        ['allow', 'ok'],
        ['deny', 'issuer_exists'],
      ]);
    });

    it('refuses unreachable and non-https issuers', async () => {
      const before = await count('trusted_issuers');
      const down = await admin(t, 'POST', '/v1/admin/issuers', {
        name: 'down',
        issuer: 'http://127.0.0.1:9/',
      });
      expect([down.status, codeOf(down.body)]).toEqual([502, 'issuer_unreachable']);
      const plain = await admin(t, 'POST', '/v1/admin/issuers', {
        name: 'plain',
        issuer: 'http://issuer.example.com',
      });
      expect([plain.status, codeOf(plain.body)]).toEqual([400, 'invalid_request']);
      const query = await admin(t, 'POST', '/v1/admin/issuers', {
        name: 'q',
        issuer: 'https://issuer.example.com/?a=b',
      });
      expect(query.status).toBe(400);
      expect(await count('trusted_issuers')).toBe(before);
    });

    it('binds exact claims to one agent, refusing duplicates and reserved claims', async () => {
      const bound = await admin(t, 'POST', '/v1/admin/agents/bot-1/bindings', {
        issuer: 'ci',
        claims: { sub: 'wl', repository: 'acme/app' },
      });
      expect(bound.status, bound.text).toBe(201);
      const binding = bound.body as { id: string };
      const twin = await admin(t, 'POST', '/v1/admin/agents/alpha-2/bindings', {
        issuer: 'ci',
        claims: { repository: 'acme/app', sub: 'wl' },
      });
      expect([twin.status, codeOf(twin.body)]).toEqual([409, 'binding_exists']);
      const reserved = await admin(t, 'POST', '/v1/admin/agents/bot-1/bindings', {
        issuer: 'ci',
        claims: { aud: 'x' },
      });
      expect([reserved.status, codeOf(reserved.body)]).toEqual([400, 'invalid_request']);
      const noIssuer = await admin(t, 'POST', '/v1/admin/agents/bot-1/bindings', {
        issuer: 'nope',
        claims: { sub: 'x' },
      });
      expect([noIssuer.status, codeOf(noIssuer.body)]).toEqual([404, 'issuer_not_found']);
      expect((await admin(t, 'GET', '/v1/admin/agents/bot-1/bindings')).body).toMatchObject({
        items: [{ id: binding.id, issuer: 'ci', claims: { repository: 'acme/app', sub: 'wl' } }],
      });
      const gone = await admin(
        t,
        'DELETE',
        '/v1/admin/agents/bot-1/bindings/00000000-0000-4000-8000-000000000000',
      );
      expect([gone.status, codeOf(gone.body)]).toEqual([404, 'binding_not_found']);
      expect((await admin(t, 'DELETE', `/v1/admin/agents/bot-1/bindings/${binding.id}`)).status).toBe(204);
      expect(await count('workload_bindings')).toBe(0);
    });
  });

  describe('removal', () => {
    it('deletes the agent with its keys, bindings and grants in one audited change', async () => {
      await admin(t, 'POST', '/v1/admin/agents/bot-1/bindings', { issuer: 'ci', claims: { sub: 'wl' } });
      await t.vault.store.db
        .insertInto('grants')
        .values({
          id: 'grant-of-bot-1',
          namespace: 'default',
          agent_id: bot.id,
          credential_id: 'some-credential',
          scopes: '[]',
          reveal: 0,
          expires_at: null,
          created_at: start,
          created_by: 'test',
          revoked_at: null,
          revoked_reason: null,
        })
        .execute();
      const removed = await admin(t, 'DELETE', '/v1/admin/agents/bot-1');
      expect(removed.status, removed.text).toBe(204);
      const db = t.vault.store.db;
      expect(await db.selectFrom('agent_keys').select('id').where('agent_id', '=', bot.id).execute()).toEqual(
        [],
      );
      expect(
        await db.selectFrom('workload_bindings').select('id').where('agent_id', '=', bot.id).execute(),
      ).toEqual([]);
      expect(await db.selectFrom('grants').select('id').where('agent_id', '=', bot.id).execute()).toEqual([]);
      expect(JSON.parse((await eventsOf(t, 'agent.delete')).at(-1)!.details)).toMatchObject({
        keys_deleted: 2,
        bindings_deleted: 1,
        grants_deleted: 1,
      });
      expect((await admin(t, 'GET', '/v1/admin/agents/bot-1')).status).toBe(404);
      const again = await admin(t, 'DELETE', '/v1/admin/agents/bot-1');
      expect([again.status, codeOf(again.body)]).toEqual([404, 'agent_not_found']);
      expect((await eventsOf(t, 'agent.delete')).at(-1)).toMatchObject({
        decision: 'deny',
        reason: 'agent_not_found',
      });
    });
  });
};
