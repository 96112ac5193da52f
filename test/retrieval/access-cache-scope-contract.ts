import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { openStore, type Store } from '../../src/store/database.js';
import { accessScope } from '../../src/store/generation-cache.js';
import { accessChangeRules0004 } from '../../src/store/migrations.js';
import { startTestVault, type TestVault, type TestVaultOptions } from '../helpers/vault.js';
import { openReplica, outcomes, type Replica } from './access-cache-replica.js';
import { addAgent, addCredential, errorOf, grant, retrieve, type TestAgent } from './retrieval-fixtures.js';

const now = () => new Date().toISOString();

/**
 * Invalidation by scope (migration 0004, generation-cache.ts), seen from two replicas on one
 * database: the vault (HTTP, its own cache) and a second one on its own connection whose every lookup
 * is recorded by name. A new secret version of one credential (what a token refresh writes) reloads
 * that credential only, on both; a revocation still holds on the very next request on both.
 */
export const accessCacheScopeContract = (
  storeOptions: () => Promise<TestVaultOptions & { cleanup?: () => Promise<void> }>,
) => {
  let t: TestVault;
  let other: Store;
  let replica: Replica;
  let cleanup: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    t = await startTestVault(options);
    other = await openStore({ databaseUrl: options.databaseUrl, dataDir: t.dataDir });
    replica = await openReplica(other, { dataDir: t.dataDir, clock: systemClock });
  });

  afterAll(async () => {
    await replica?.close();
    await other?.close();
    await t?.stop();
    await cleanup?.();
  });

  const generation = async () =>
    Number(
      (
        await other.db
          .selectFrom('access_generation')
          .select('value')
          .where('id', '=', 1)
          .executeTakeFirstOrThrow()
      ).value,
    );

  /** The scopes recorded by changes after generation `after`. */
  const changedSince = async (after: number) =>
    (await other.db.selectFrom('access_changes').select('scope').where('generation', '>', after).execute())
      .map((row) => row.scope)
      .sort();

  const missesOnVault = async () => {
    const text = (await t.request('GET', '/metrics', { token: null })).text;
    return Number(/tokenvault_access_cache_lookups_total\{result="miss"\} (\d+)/.exec(text)?.[1] ?? NaN);
  };

  interface Warm {
    agent: TestAgent;
    credential: string;
    credentialId: string;
    grantId: string;
  }

  /** An agent with a reveal grant on its own credential, retrieved on both replicas so all is cached. */
  const warm = async (name: string, namespace?: string): Promise<Warm> => {
    const credential = `${name}-cred`;
    const created = await addCredential(
      t,
      { name: credential, type: 'api_key', secret: { api_key: `${name}-secret-1` } },
      namespace,
    );
    const agent = await addAgent(t, name, namespace);
    const granted = await grant(t, { agent: agent.id, credential, ttl: '1d', reveal: true }, namespace);
    for (let i = 0; i < 2; i++) {
      const ok = await retrieve(
        t,
        agent,
        { agent: agent.name, service: credential },
        namespace ? { 'x-tokenvault-namespace': namespace } : {},
      );
      expect(ok.status, ok.text).toBe(200);
      expect(await replica.retrieve(agent.apiKey, credential)).toEqual({ api_key: `${name}-secret-1` });
    }
    return { agent, credential, credentialId: created.id, grantId: granted.id };
  };

  /** Both replicas' answers to the agent, the vault's as its token or error code. */
  const onBoth = async (w: Warm) => {
    const answer = await retrieve(t, w.agent, { agent: w.agent.name, service: w.credential });
    const vault =
      answer.status === 200
        ? (answer.body as { access_token: string }).access_token
        : errorOf(answer.body).code;
    return { vault, replica: await replica.retrieve(w.agent.apiKey, w.credential) };
  };

  it('reloads, on both replicas, only the credential a new secret version was written for', async () => {
    const a = await warm('scope-refresh-a');
    const b = await warm('scope-refresh-b');
    // B's agent and grant were namespace changes, which dropped A's key and grants: cache them again.
    await onBoth(a);
    const before = await generation();
    replica.takeLookups();

    // What a token refresh writes: a new version of A's secret, through the credential service.
    await t.vault.services.credentials.update('default', a.credential, {
      secret: { api_key: 'scope-refresh-a-secret-2' },
    });
    expect(await changedSince(before)).toEqual([accessScope.credential(a.credentialId)]);

    // B first: every lookup on the second replica is answered from memory; nothing reloads on the vault.
    const missesBefore = await missesOnVault();
    expect(await onBoth(b)).toEqual({
      vault: 'scope-refresh-b-secret-1',
      replica: { api_key: 'scope-refresh-b-secret-1' },
    });
    expect(await missesOnVault()).toBe(missesBefore);
    const afterB = replica.takeLookups();
    expect(afterB.length).toBeGreaterThan(0);
    expect(afterB.filter((e) => !e.hit)).toEqual([]);

    // A: its key and grants are still cached, its row and secret are read afresh, on both replicas.
    expect(await onBoth(a)).toEqual({
      vault: 'scope-refresh-a-secret-2',
      replica: { api_key: 'scope-refresh-a-secret-2' },
    });
    const afterA = replica.takeLookups();
    expect(outcomes(afterA, 'agent_key')).toEqual(['hit']);
    expect(outcomes(afterA, 'grants')).toEqual(['hit']);
    expect(outcomes(afterA, 'secret')).toEqual(['miss']);
    expect(outcomes(afterA, 'credential')).toEqual(['miss']);
    expect(await missesOnVault()).toBe(missesBefore + 2);
  });

  it('reads the database once per retrieval while nothing changes, and once more after another credential’s refresh', async () => {
    const a = await warm('scope-reads-a');
    const b = await warm('scope-reads-b');
    await onBoth(a);
    replica.takeReads();
    expect(await replica.retrieve(a.agent.apiKey, a.credential)).toEqual({
      api_key: 'scope-reads-a-secret-1',
    });
    expect(replica.takeReads()).toBe(1);
    await t.vault.services.credentials.update('default', b.credential, { secret: { api_key: 'b-2' } });
    // The counter, then which scopes changed; A's entries stand.
    expect(await replica.retrieve(a.agent.apiKey, a.credential)).toEqual({
      api_key: 'scope-reads-a-secret-1',
    });
    expect(replica.takeReads()).toBe(2);
    expect(await replica.retrieve(a.agent.apiKey, a.credential)).toEqual({
      api_key: 'scope-reads-a-secret-1',
    });
    expect(replica.takeReads()).toBe(1);
  });

  it('keeps another namespace’s entries when one namespace is revoked, and refuses there at once', async () => {
    const kept = await warm('scope-ns-kept');
    const killed = await warm('scope-ns-killed', 'scope-ns-other');
    replica.takeLookups();
    const before = await generation();
    const revoked = await t.request('POST', '/v1/admin/revoke-all', {
      headers: { 'x-tokenvault-namespace': 'scope-ns-other' },
    });
    expect(revoked.status, revoked.text).toBe(200);
    expect(await changedSince(before)).toEqual([accessScope.namespace('scope-ns-other')]);

    expect(await replica.retrieve(killed.agent.apiKey, killed.credential)).toBe('agent_key_revoked');
    const refused = await retrieve(
      t,
      killed.agent,
      { agent: killed.agent.name, service: killed.credential },
      { 'x-tokenvault-namespace': 'scope-ns-other' },
    );
    expect(errorOf(refused.body).code).toBe('agent_key_revoked');
    replica.takeLookups();
    expect(await replica.retrieve(kept.agent.apiKey, kept.credential)).toEqual({
      api_key: 'scope-ns-kept-secret-1',
    });
    expect(replica.takeLookups().filter((e) => !e.hit)).toEqual([]);
  });

  it('holds a credential disabled or removed by another connection on the next request, on both replicas', async () => {
    const disabled = await warm('scope-cred-disabled');
    const before = await generation();
    await other.db
      .updateTable('credentials')
      .set({ status: 'revoked' })
      .where('id', '=', disabled.credentialId)
      .execute();
    expect(await changedSince(before)).toEqual(
      [
        accessScope.credential(disabled.credentialId),
        accessScope.grantedCredential(disabled.credentialId),
      ].sort(),
    );
    expect(await onBoth(disabled)).toEqual({ vault: 'credential_revoked', replica: 'credential_revoked' });

    const removed = await warm('scope-cred-removed');
    await other.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('credential_versions').where('credential_id', '=', removed.credentialId).execute();
      await trx.deleteFrom('credentials').where('id', '=', removed.credentialId).execute();
    });
    expect(await onBoth(removed)).toEqual({
      vault: 'credential_not_granted',
      replica: 'credential_not_granted',
    });
  });

  it('holds a grant revoked, a key revoked and an agent disabled elsewhere on both replicas', async () => {
    const g = await warm('scope-grant');
    await other.db
      .updateTable('grants')
      .set({ revoked_at: now(), revoked_reason: 'revoked' })
      .where('id', '=', g.grantId)
      .execute();
    const answer = await onBoth(g);
    expect(answer.vault).toBe('grant_revoked');
    expect(answer.replica).toBe('credential_not_granted');

    const k = await warm('scope-key');
    await other.db
      .updateTable('agent_keys')
      .set({ revoked_at: now() })
      .where('agent_id', '=', k.agent.id)
      .execute();
    expect(await onBoth(k)).toEqual({ vault: 'agent_key_revoked', replica: 'agent_key_revoked' });

    const d = await warm('scope-agent');
    await other.db.updateTable('agents').set({ status: 'disabled' }).where('id', '=', d.agent.id).execute();
    expect(await onBoth(d)).toEqual({ vault: 'agent_disabled', replica: 'agent_disabled' });
  });

  it('records nothing, and moves nothing, for an API key’s last use', async () => {
    const before = await generation();
    await other.db.updateTable('agent_keys').set({ last_used_at: now() }).execute();
    expect(await generation()).toBe(before);
    expect(await changedSince(before)).toEqual([]);
  });

  it('has a rule for every access table, and lists every agent_keys column but last_used_at', async () => {
    expect([...new Set(accessChangeRules0004.map((rule) => rule.table))].sort()).toEqual(
      ['agent_keys', 'agents', 'credential_versions', 'credentials', 'data_keys', 'grants'].sort(),
    );
    const columns =
      other.dialect === 'sqlite'
        ? (await sql<{ name: string }>`select name from pragma_table_info('agent_keys')`.execute(other.db))
            .rows
        : (
            await sql<{
              name: string;
            }>`select column_name as name from information_schema.columns where table_name = 'agent_keys' and table_schema = current_schema()`.execute(
              other.db,
            )
          ).rows;
    const listed = accessChangeRules0004.find((rule) => rule.table === 'agent_keys')?.columns;
    expect([...(listed ?? [])].sort()).toEqual(
      columns
        .map((c) => c.name)
        .filter((name) => name !== 'last_used_at')
        .sort(),
    );
  });
};
