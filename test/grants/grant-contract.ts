import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GrantView } from '../../src/http/schemas/response-types.js';
import { fixedClock } from '../../src/lib/clock.js';
import { startTestVault, type TestVault, type TestVaultOptions } from '../helpers/vault.js';
import {
  addAgent,
  addCredential,
  auditEventsOf,
  errorOf,
  grant,
  onlyAuditEventOf,
  requestIdOf,
  type TestAgent,
} from '../retrieval/retrieval-fixtures.js';

const start = '2026-06-01T12:00:00.000Z';
const hours = (h: number) => new Date(Date.parse(start) + h * 3_600_000).toISOString();

/**
 * Grants through the admin API on one store: scopes within the credential's, lifetimes from 1 h to
 * 30 d or until revoked, one live grant per agent × credential, revocation one by one, by agent, by
 * credential and namespace-wide, the seed document import, and an audit event for each change.
 */
export const grantContract = (
  storeOptions: () => Promise<TestVaultOptions & { cleanup?: () => Promise<void> }>,
) => {
  let t: TestVault;
  let cleanup: (() => Promise<void>) | undefined;
  const clock = fixedClock(start);
  let agent42: TestAgent;

  const countGrants = async () =>
    Number(
      (
        await t.vault.store.db
          .selectFrom('grants')
          .select((eb) => eb.fn.countAll<number | string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  beforeAll(async () => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    t = await startTestVault({ ...options, clock });
    await addCredential(t, {
      name: 'slack',
      type: 'api_key',
      secret: { api_key: 'xoxb-g' },
      scopes: ['read', 'write', 'chat:write'],
    });
    await addCredential(t, {
      name: 'calendar',
      type: 'oauth2',
      secret: { access_token: 'ya29' },
      scopes: ['events.readonly', 'events'],
    });
    await addCredential(t, { name: 'github', type: 'bearer', secret: { token: 'ghp' } });
    agent42 = await addAgent(t, 'agent-42');
    await addAgent(t, 'agent-7');
  });

  afterAll(async () => {
    await t?.stop();
    await cleanup?.();
  });

  describe('create', () => {
    it('gives all the credential’s scopes by default, and records grant.create in its transaction', async () => {
      const response = await t.request('POST', '/v1/admin/grants', {
        body: { agent: 'agent-42', credential: 'slack', ttl: '7d' },
      });
      expect(response.status, response.text).toBe(201);
      expect(response.body).toMatchObject({
        agent_id: agent42.id,
        agent_name: 'agent-42',
        credential_name: 'slack',
        scopes: ['read', 'write', 'chat:write'],
        reveal: false,
        status: 'active',
        expires_at: hours(168),
        replaced_grant_ids: [],
      });
      const event = await onlyAuditEventOf(t, response);
      expect(event).toMatchObject({
        action: 'grant.create',
        actor_type: 'admin',
        target_type: 'grant',
        target_id: (response.body as GrantView).id,
        decision: 'allow',
        reason: 'ok',
      });
      expect(event.details).toMatchObject({
        credential_name: 'slack',
        agent_name: 'agent-42',
        reveal: false,
      });
    });

    it('takes a subset of scopes and refuses extra ones, naming them and the allowed ones', async () => {
      const narrowed = await grant(t, {
        agent: agent42.id,
        credential: 'calendar',
        scopes: ['events.readonly'],
        ttl: '1h',
      });
      expect(narrowed.scopes).toEqual(['events.readonly']);
      const before = await countGrants();
      const refused = await t.request('POST', '/v1/admin/grants', {
        body: { agent: 'agent-42', credential: 'calendar', scopes: ['events.readonly', 'admin'], ttl: '1h' },
      });
      expect(refused.status).toBe(400);
      expect(errorOf(refused.body).code).toBe('invalid_scope');
      expect(errorOf(refused.body).message).toContain('"admin"');
      expect(errorOf(refused.body).message).toContain('events.readonly, events');
      expect(await countGrants()).toBe(before);
      expect(await onlyAuditEventOf(t, refused)).toMatchObject({
        action: 'grant.create',
        decision: 'deny',
        reason: 'invalid_scope',
      });
    });

    it.each([
      [{ ttl: '59m' }, /from 1h to 30d; 59m is too short/],
      [{ ttl: '31d' }, /from 1h to 30d; 31d is too long/],
      [{ ttl: 'a while' }, /not a duration.*from 1h to 30d/],
      [{}, /Say how long the grant lasts: a TTL from 1h to 30d/],
      [{ ttl: '1h', until_revoked: true }, /not both/],
    ])('refuses the lifetime %j with the allowed range', async (lifetime, message) => {
      const before = await countGrants();
      const refused = await t.request('POST', '/v1/admin/grants', {
        body: { agent: 'agent-7', credential: 'github', ...lifetime },
      });
      expect(refused.status).toBe(400);
      expect(errorOf(refused.body).code).toBe('invalid_ttl');
      expect(errorOf(refused.body).message).toMatch(message);
      expect(await countGrants()).toBe(before);
    });

    it('accepts the bounds, 1h and 30d, and until revoked', async () => {
      expect((await grant(t, { agent: 'agent-7', credential: 'github', ttl: '1h' })).expires_at).toBe(
        hours(1),
      );
      expect((await grant(t, { agent: 'agent-7', credential: 'github', ttl: '30d' })).expires_at).toBe(
        hours(720),
      );
      expect(
        (await grant(t, { agent: 'agent-7', credential: 'github', until_revoked: true })).expires_at,
      ).toBeNull();
    });

    it('replaces the live grant for the same agent and credential', async () => {
      const first = await grant(t, { agent: 'agent-7', credential: 'slack', ttl: '1h' });
      const second = await grant(t, { agent: 'agent-7', credential: 'slack', ttl: '2h', reveal: true });
      expect(second.replaced_grant_ids).toEqual([first.id]);
      const old = await t.request('GET', `/v1/admin/grants/${first.id}`);
      expect(old.body).toMatchObject({ status: 'revoked', revoked_reason: 'superseded' });
    });

    it('names a missing agent or credential', async () => {
      const noAgent = await t.request('POST', '/v1/admin/grants', {
        body: { agent: 'ghost', credential: 'slack', ttl: '1h' },
      });
      expect(noAgent.status).toBe(404);
      expect(errorOf(noAgent.body)).toMatchObject({ code: 'agent_not_found' });
      const noCredential = await t.request('POST', '/v1/admin/grants', {
        body: { agent: 'agent-42', credential: 'ghost', ttl: '1h' },
      });
      expect(noCredential.status).toBe(404);
      expect(errorOf(noCredential.body)).toMatchObject({ code: 'credential_not_found' });
    });
  });

  describe('list, show and expiry under the injected clock', () => {
    it('lists live grants, filtered, in pages; `all` adds revoked and expired ones', async () => {
      const listed = await t.request('GET', '/v1/admin/grants?agent=agent-7&credential=github');
      const items = (listed.body as { items: GrantView[] }).items;
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({ status: 'active', expires_at: null });
      const all = await t.request('GET', '/v1/admin/grants?agent=agent-7&credential=github&all=true');
      // Same created_at under the fixed clock: the page order is then by id, so compare as a set.
      expect((all.body as { items: GrantView[] }).items.map((g) => g.status).sort()).toEqual([
        'active',
        'revoked',
        'revoked',
      ]);

      const seen: string[] = [];
      let after: string | null = null;
      do {
        const query: string = after === null ? '' : `&after=${encodeURIComponent(after)}`;
        const page = await t.request('GET', `/v1/admin/grants?all=true&limit=2${query}`);
        const body = page.body as { items: GrantView[]; next_cursor: string | null };
        seen.push(...body.items.map((g) => g.id));
        after = body.next_cursor;
      } while (after !== null);
      const everything = await t.request('GET', '/v1/admin/grants?all=true&limit=500');
      expect(seen).toEqual((everything.body as { items: GrantView[] }).items.map((g) => g.id));
      expect(new Set(seen).size).toBe(seen.length);
    });

    it('shows a grant expired once the clock reaches its expiry', async () => {
      const created = await grant(t, { agent: 'agent-42', credential: 'github', ttl: '1h', reveal: true });
      expect((await t.request('GET', `/v1/admin/grants/${created.id}`)).body).toMatchObject({
        status: 'active',
      });
      clock.set(hours(1));
      try {
        expect((await t.request('GET', `/v1/admin/grants/${created.id}`)).body).toMatchObject({
          status: 'expired',
        });
        const live = await t.request('GET', '/v1/admin/grants?agent=agent-42&credential=github');
        expect((live.body as { items: GrantView[] }).items).toEqual([]);
      } finally {
        clock.set(start);
      }
    });

    it('answers grant_not_found for an unknown id', async () => {
      const response = await t.request('GET', '/v1/admin/grants/00000000-0000-0000-0000-000000000000');
      expect(response.status).toBe(404);
      expect(errorOf(response.body).code).toBe('grant_not_found');
    });
  });

  describe('revoke', () => {
    it('revokes one grant, once: a second revoke changes and records nothing', async () => {
      const created = await grant(t, { agent: 'agent-42', credential: 'slack', ttl: '1h' });
      const revoked = await t.request('DELETE', `/v1/admin/grants/${created.id}`);
      expect(revoked.status).toBe(200);
      expect(revoked.body).toMatchObject({ status: 'revoked', revoked_reason: 'revoked' });
      expect(await onlyAuditEventOf(t, revoked)).toMatchObject({
        action: 'grant.revoke',
        target_id: created.id,
      });
      const again = await t.request('DELETE', `/v1/admin/grants/${created.id}`);
      expect(again.status).toBe(200);
      expect(await auditEventsOf(t, requestIdOf(again))).toEqual([]);
    });

    it('revokes every grant of an agent, or on a credential', async () => {
      await addAgent(t, 'agent-bulk');
      await grant(t, { agent: 'agent-bulk', credential: 'slack', ttl: '1h' });
      await grant(t, { agent: 'agent-bulk', credential: 'github', ttl: '1h' });
      const byAgent = await t.request('POST', '/v1/admin/grants/revoke', { body: { agent: 'agent-bulk' } });
      expect(byAgent.status, byAgent.text).toBe(200);
      expect((byAgent.body as { revoked: number }).revoked).toBe(2);
      expect(await auditEventsOf(t, requestIdOf(byAgent))).toHaveLength(2);

      await addCredential(t, { name: 'bulk-cred', type: 'bearer', secret: { token: 'b' } });
      await grant(t, { agent: 'agent-42', credential: 'bulk-cred', ttl: '1h' });
      await grant(t, { agent: 'agent-7', credential: 'bulk-cred', ttl: '1h' });
      const byCredential = await t.request('POST', '/v1/admin/grants/revoke', {
        body: { credential: 'bulk-cred' },
      });
      expect((byCredential.body as { revoked: number }).revoked).toBe(2);
      const left = await t.request('GET', '/v1/admin/grants?credential=bulk-cred');
      expect((left.body as { items: unknown[] }).items).toEqual([]);
      const both = await t.request('POST', '/v1/admin/grants/revoke', {
        body: { agent: 'x', credential: 'y' },
      });
      expect(both.status).toBe(400);
    });

    it('deletes a credential’s grants with it, in the same audited change', async () => {
      const doomed = await addCredential(t, { name: 'short-lived', type: 'bearer', secret: { token: 's' } });
      await grant(t, { agent: 'agent-42', credential: 'short-lived', ttl: '1h' });
      await grant(t, { agent: 'agent-7', credential: 'short-lived', ttl: '1h' });
      const removed = await t.request('DELETE', '/v1/admin/credentials/short-lived');
      expect(removed.status, removed.text).toBe(204);
      const event = await onlyAuditEventOf(t, removed);
      expect(event).toMatchObject({ action: 'credential.delete', decision: 'allow' });
      expect(event.details).toMatchObject({ grants_deleted: 2 });
      const orphans = await t.vault.store.db
        .selectFrom('grants')
        .select('id')
        .where('credential_id', '=', doomed.id)
        .execute();
      expect(orphans).toEqual([]);
      // A credential created again under the name starts with no grant.
      await addCredential(t, { name: 'short-lived', type: 'bearer', secret: { token: 't' } });
      const left = await t.request('GET', '/v1/admin/grants?credential=short-lived&all=true');
      expect(left.status, left.text).toBe(200);
      expect((left.body as { items: unknown[] }).items).toEqual([]);
    });

    it('revoke-all revokes the namespace’s grants and agent keys in one audited step', async () => {
      const namespace = 'doomed';
      const headers = { 'x-tokenvault-namespace': namespace };
      await addCredential(t, { name: 'slack', type: 'api_key', secret: { api_key: 'd' } }, namespace);
      const a = await addAgent(t, 'a1', namespace);
      await addAgent(t, 'a2', namespace);
      await grant(t, { agent: 'a1', credential: 'slack', ttl: '1h' }, namespace);
      await grant(t, { agent: 'a2', credential: 'slack', until_revoked: true }, namespace);
      const liveBefore = await t.request('GET', '/v1/admin/grants');

      const killed = await t.request('POST', '/v1/admin/revoke-all', { headers });
      expect(killed.status, killed.text).toBe(200);
      expect(killed.body).toMatchObject({
        namespace,
        grants_revoked: 2,
        agent_keys_revoked: 2,
        revoked_at: start,
      });
      const event = await onlyAuditEventOf(t, killed);
      expect(event).toMatchObject({ action: 'namespace.revoke_all', namespace, decision: 'allow' });
      expect(event.details).toMatchObject({ grants_revoked: 2, agent_keys_revoked: 2 });

      const keys = await t.vault.store.db
        .selectFrom('agent_keys')
        .select('revoked_at')
        .where('agent_id', '=', a.id)
        .execute();
      expect(keys.map((k) => k.revoked_at)).toEqual([start]);
      const listed = await t.request('GET', '/v1/admin/grants', { headers });
      expect((listed.body as { items: unknown[] }).items).toEqual([]);
      // Nothing outside the namespace moved.
      expect((await t.request('GET', '/v1/admin/grants')).body).toEqual(liveBefore.body);
    });
  });

  describe('import of the seed policy document', () => {
    const seed = { agent_id: 'agent-42', allowed_credentials: ['slack:read', 'calendar:events.readonly'] };

    it('creates one grant per credential from a single document', async () => {
      const response = await t.request('POST', '/v1/admin/grants/import', {
        body: { document: seed, ttl: '7d', reveal: true },
      });
      expect(response.status, response.text).toBe(201);
      const items = (response.body as { items: GrantView[] }).items;
      expect(items.map((g) => [g.agent_name, g.credential_name, g.scopes, g.reveal, g.expires_at])).toEqual([
        ['agent-42', 'slack', ['read'], true, hours(168)],
        ['agent-42', 'calendar', ['events.readonly'], true, hours(168)],
      ]);
      const events = await auditEventsOf(t, requestIdOf(response));
      expect(
        events
          .filter((e) => e.action === 'grant.create')
          .map((e) => e.target_id)
          .sort(),
      ).toEqual(items.map((g) => g.id).sort());
    });

    it('takes a list, grouping entries of one agent × credential; a bare name is all scopes', async () => {
      const response = await t.request('POST', '/v1/admin/grants/import', {
        body: {
          document: [
            seed,
            { agent_id: agent42.id, allowed_credentials: ['slack:write'] },
            { agent_id: 'agent-7', allowed_credentials: ['calendar', 'slack:chat:write'] },
          ],
          until_revoked: true,
        },
      });
      expect(response.status, response.text).toBe(201);
      const items = (response.body as { items: GrantView[] }).items;
      expect(items.map((g) => [g.agent_name, g.credential_name, g.scopes, g.expires_at])).toEqual([
        ['agent-42', 'slack', ['read', 'write'], null],
        ['agent-42', 'calendar', ['events.readonly'], null],
        ['agent-7', 'calendar', ['events.readonly', 'events'], null],
        ['agent-7', 'slack', ['chat:write'], null],
      ]);
    });

    it('is all or nothing, naming every problem', async () => {
      const before = await countGrants();
      const response = await t.request('POST', '/v1/admin/grants/import', {
        body: {
          document: [
            { agent_id: 'agent-42', allowed_credentials: ['slack:read', 'slack:admin'] },
            { agent_id: 'agent-99', allowed_credentials: ['jira:read'] },
          ],
          ttl: '1h',
        },
      });
      expect(response.status).toBe(400);
      const { code, message } = errorOf(response.body);
      expect(code).toBe('invalid_import');
      expect(message).toContain('no agent "agent-99"');
      expect(message).toContain('no credential "jira"');
      expect(message).toContain('credential "slack" has no scope "admin"');
      expect(message).toContain('document 1, allowed_credentials[1] ("slack:admin")');
      expect(await countGrants()).toBe(before);
      expect(await onlyAuditEventOf(t, response)).toMatchObject({
        action: 'grant.import',
        decision: 'deny',
        reason: 'invalid_import',
      });
    });
  });
};
