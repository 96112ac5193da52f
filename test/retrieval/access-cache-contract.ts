import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/database.js';
import { createGenerationCache } from '../../src/store/generation-cache.js';
import { startTestVault, type TestVault, type TestVaultOptions } from '../helpers/vault.js';
import { addAgent, addCredential, errorOf, grant, retrieve, type TestAgent } from './retrieval-fixtures.js';

const now = () => new Date().toISOString();

/**
 * The agent path caches its key, grant and credential rows until the access generation moves with a
 * change of their scope (DESIGN invariant 3; scopes: access-cache-scope-contract.ts). A change made anywhere (another replica, a SQL shell: here a second connection that
 * bypasses the vault entirely) must still hold on the very next request.
 */
export const accessCacheContract = (
  storeOptions: () => Promise<TestVaultOptions & { cleanup?: () => Promise<void> }>,
) => {
  let t: TestVault;
  let other: Store;
  let cleanup: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    t = await startTestVault({ ...options, settings: { outboundAllow: '127.0.0.1' } });
    // Another connection to the same database, as another replica or an operator would have.
    other = await openStore({ databaseUrl: options.databaseUrl, dataDir: t.dataDir });
  });

  afterAll(async () => {
    await other?.close();
    await t?.stop();
    await cleanup?.();
  });

  const generation = async (store: Store) =>
    Number(
      (
        await store.db
          .selectFrom('access_generation')
          .select('value')
          .where('id', '=', 1)
          .executeTakeFirstOrThrow()
      ).value,
    );

  /** An agent with a reveal grant on its own credential, retrieved twice so every row is cached. */
  const warmAgent = async (
    name: string,
  ): Promise<{ agent: TestAgent; grantId: string; credential: string }> => {
    const credential = `${name}-cred`;
    await addCredential(t, { name: credential, type: 'api_key', secret: { api_key: `${name}-secret-1` } });
    const agent = await addAgent(t, name);
    const granted = await grant(t, { agent: agent.id, credential, ttl: '1d', reveal: true });
    for (let i = 0; i < 2; i++) {
      const ok = await retrieve(t, agent, { agent: agent.name, service: credential });
      expect(ok.status, ok.text).toBe(200);
    }
    return { agent, grantId: granted.id, credential };
  };

  it('answers from the cache while the generation stands, and reads afresh once it moves', async () => {
    const { agent, grantId, credential } = await warmAgent('cache-reads');
    const store = t.vault.store;
    const before = await generation(store);
    for (let i = 0; i < 3; i++) {
      const ok = await retrieve(t, agent, { agent: agent.name, service: credential });
      expect((ok.body as { access_token: string }).access_token).toBe('cache-reads-secret-1');
    }
    // Retrievals and their audit events leave the generation alone (an API key's last use too).
    expect(await generation(store)).toBe(before);

    // Revoked behind the vault's back with the generation put back: the cached grant still answers,
    // which shows the rows come from the cache and that the generation alone decides when they go.
    await other.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('grants')
        .set({ revoked_at: now(), revoked_reason: 'revoked' })
        .where('id', '=', grantId)
        .execute();
      await trx.updateTable('access_generation').set({ value: before }).where('id', '=', 1).execute();
    });
    expect((await retrieve(t, agent, { agent: agent.name, service: credential })).status).toBe(200);
    await other.db
      .updateTable('access_generation')
      .set({ value: before + 1 })
      .where('id', '=', 1)
      .execute();
    const refused = await retrieve(t, agent, { agent: agent.name, service: credential });
    expect(errorOf(refused.body).code).toBe('grant_revoked');
  });

  it('counts cache hits and misses, and audit group commits, in /metrics', async () => {
    const { agent, credential } = await warmAgent('cache-metrics');
    await retrieve(t, agent, { agent: agent.name, service: credential });
    const text = (await t.request('GET', '/metrics', { token: null })).text;
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
    expect(value(/tokenvault_access_cache_lookups_total\{result="hit"\} (\d+)/)).toBeGreaterThan(0);
    expect(value(/tokenvault_access_cache_lookups_total\{result="miss"\} (\d+)/)).toBeGreaterThan(0);
    const commits = value(/tokenvault_audit_commits_total (\d+)/);
    expect(commits).toBeGreaterThan(0);
    expect(value(/tokenvault_audit_events_total (\d+)/)).toBeGreaterThanOrEqual(commits);
  });

  it('refuses a grant revoked by another connection on the very next request', async () => {
    const { agent, grantId, credential } = await warmAgent('cache-grant');
    await other.db
      .updateTable('grants')
      .set({ revoked_at: now(), revoked_reason: 'revoked' })
      .where('id', '=', grantId)
      .execute();
    const refused = await retrieve(t, agent, { agent: agent.name, service: credential });
    expect(refused.status).toBe(403);
    expect(errorOf(refused.body).code).toBe('grant_revoked');
  });

  it('refuses an API key revoked, or an agent disabled, by another connection on the next request', async () => {
    const first = await warmAgent('cache-key');
    await other.db
      .updateTable('agent_keys')
      .set({ revoked_at: now() })
      .where('agent_id', '=', first.agent.id)
      .execute();
    const revoked = await retrieve(t, first.agent, { agent: first.agent.name, service: first.credential });
    expect(errorOf(revoked.body).code).toBe('agent_key_revoked');

    const second = await warmAgent('cache-agent');
    await other.db
      .updateTable('agents')
      .set({ status: 'disabled' })
      .where('id', '=', second.agent.id)
      .execute();
    const disabled = await retrieve(t, second.agent, {
      agent: second.agent.name,
      service: second.credential,
    });
    expect(errorOf(disabled.body).code).toBe('agent_disabled');
  });

  it('serves no cached secret once the credential row changed elsewhere', async () => {
    const a = await warmAgent('cache-secret-a');
    const b = await warmAgent('cache-secret-b');
    // Another credential's ciphertext moved into this one's row: must fail to decrypt, not be served.
    const row = (name: string) =>
      other.db
        .selectFrom('credentials as c')
        .innerJoin('credential_versions as v', (join) =>
          join.onRef('v.credential_id', '=', 'c.id').onRef('v.version', '=', 'c.current_version'),
        )
        .select(['c.id', 'v.version', 'v.ciphertexts'])
        .where('c.name', '=', name)
        .executeTakeFirstOrThrow();
    const [rowA, rowB] = [await row(a.credential), await row(b.credential)];
    await other.db
      .updateTable('credential_versions')
      .set({ ciphertexts: rowB.ciphertexts })
      .where('credential_id', '=', rowA.id)
      .where('version', '=', rowA.version)
      .execute();
    const refused = await retrieve(t, a.agent, { agent: a.agent.name, service: a.credential });
    expect(refused.status).toBe(500);
    expect(refused.text).not.toContain('cache-secret-b-secret-1');
  });

  it('moves the generation with every change to an access table, in the change’s own transaction', async () => {
    const store = t.vault.store;
    let g = await generation(store);
    await store.db
      .insertInto('agents')
      .values({
        id: 'gen-probe',
        namespace: 'default',
        name: 'gen-probe',
        description: '',
        status: 'active',
        jwks: null,
        jwks_url: null,
        created_at: now(),
        updated_at: now(),
      })
      .execute();
    expect(await generation(store)).toBeGreaterThan(g);
    g = await generation(store);
    await expect(
      store.db.transaction().execute(async (trx) => {
        await trx.updateTable('agents').set({ status: 'disabled' }).where('id', '=', 'gen-probe').execute();
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await generation(store)).toBe(g);
    await store.db.deleteFrom('agents').where('id', '=', 'gen-probe').execute();
    expect(await generation(store)).toBeGreaterThan(g);
    g = await generation(store);
    await store.db.updateTable('agent_keys').set({ last_used_at: now() }).execute();
    expect(await generation(store)).toBe(g);
  });

  describe('the cache itself', () => {
    it('loads once per generation, and keeps nothing a newer generation made stale', async () => {
      const cache = createGenerationCache(other);
      let loads = 0;
      let release: () => void = () => {};
      let gate: Promise<void> | undefined;
      const lookup = cache.lookup({
        key: (k: string) => k,
        load: async (k: string) => {
          loads += 1;
          await gate;
          return `${k}@${loads}`;
        },
        maxEntries: 10,
      });
      const v1 = await cache.view();
      expect(await lookup(v1, 'a')).toBe('a@1');
      expect(await lookup(await cache.view(), 'a')).toBe('a@1');
      expect(loads).toBe(1);

      // A load begun at an old view that ends after a newer view was taken is not kept.
      gate = new Promise((resolve) => (release = resolve));
      const old = await cache.view();
      await other.db
        .updateTable('access_generation')
        .set({ value: sql`value + 1` })
        .where('id', '=', 1)
        .execute();
      const slow = lookup(old, 'b');
      const fresh = await cache.view();
      expect(fresh.generation).toBeGreaterThan(old.generation);
      release();
      expect(await slow).toBe('b@2');
      gate = undefined;
      expect(await lookup(fresh, 'b')).toBe('b@3');
      // And the change emptied what the older generation had cached.
      expect(await lookup(fresh, 'a')).toBe('a@4');
      expect(await lookup(await cache.view(), 'a')).toBe('a@4');
    });

    /** What a 0004 trigger does for a change of `scope`: move the counter, record the scope at it. */
    const recordChange = (scope: string) =>
      other.db.transaction().execute(async (trx) => {
        const { value } = await trx
          .updateTable('access_generation')
          .set({ value: sql`value + 1` })
          .where('id', '=', 1)
          .returning('value')
          .executeTakeFirstOrThrow();
        await trx
          .insertInto('access_changes')
          .values({ scope, generation: Number(value) })
          .onConflict((oc) => oc.column('scope').doUpdateSet({ generation: Number(value) }))
          .execute();
      });

    it('drops only the changed scopes’ entries, and keeps no load that overlapped a change', async () => {
      const cache = createGenerationCache(other);
      let loads = 0;
      let release: () => void = () => {};
      let gate: Promise<void> | undefined;
      const lookup = cache.lookup({
        key: (k: string) => k,
        load: async (k: string) => {
          loads += 1;
          await gate;
          return `${k}@${loads}`;
        },
        maxEntries: 10,
        scopes: (k) => [`probe:${k}`],
      });
      const v1 = await cache.view();
      expect([await lookup(v1, 'a'), await lookup(v1, 'b')]).toEqual(['a@1', 'b@2']);

      await recordChange('probe:a');
      const v2 = await cache.view();
      expect(v2.generation).toBeGreaterThan(v1.generation);
      expect([await lookup(v2, 'a'), await lookup(v2, 'b')]).toEqual(['a@3', 'b@2']);

      // A load under way while any change is applied is answered but not kept.
      gate = new Promise((resolve) => (release = resolve));
      const slow = lookup(v2, 'c');
      await recordChange('probe:unrelated');
      const v3 = await cache.view();
      release();
      expect(await slow).toBe('c@4');
      gate = undefined;
      expect([await lookup(v3, 'c'), await lookup(v3, 'a'), await lookup(v3, 'b')]).toEqual([
        'c@5',
        'a@3',
        'b@2',
      ]);

      // A counter put back (a restore) vouches for nothing: everything loads again.
      await other.db
        .updateTable('access_generation')
        .set({ value: v1.generation - 1 })
        .where('id', '=', 1)
        .execute();
      const v4 = await cache.view();
      expect([await lookup(v4, 'a'), await lookup(v4, 'b')]).toEqual(['a@6', 'b@7']);
      // Put forward again past every recorded change, so the other tests' stores stay consistent.
      await other.db
        .updateTable('access_generation')
        .set({ value: v3.generation + 1 })
        .where('id', '=', 1)
        .execute();
    });
  });
};
