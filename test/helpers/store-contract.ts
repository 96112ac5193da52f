import { sql } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { type Dialect, type OpenStoreOptions, openStore, type Store } from '../../src/store/database.js';
import { migrateToLatest, pingDatabase } from '../../src/store/migrations.js';
import type { CredentialTable, Database } from '../../src/store/schema.js';

/** One empty database of one dialect, as a dialect's test file provides it to the shared checks. */
export interface StoreTarget {
  readonly dialect: Dialect;
  readonly options: OpenStoreOptions;
  /** What `store.location` must say for this database. */
  readonly location: string;
  cleanup(): Promise<void>;
}

// A Record, so that a table added to `Database` without being listed here fails to compile.
const tableNames: Record<keyof Database, true> = {
  vault_state: true,
  kek_versions: true,
  data_keys: true,
  credentials: true,
  credential_versions: true,
  admin_tokens: true,
  agents: true,
  agent_keys: true,
  jwt_replay: true,
  trusted_issuers: true,
  workload_bindings: true,
  grants: true,
  audit_events: true,
  audit_head: true,
  audit_checkpoints: true,
  access_generation: true,
  access_changes: true,
  policies: true,
  policy_versions: true,
  policy_attachments: true,
  counter_buckets: true,
  counter_hits: true,
  event_outbox: true,
  oauth_apps: true,
  connect_sessions: true,
  mcp_proxies: true,
  mcp_proxy_keys: true,
  mcp_proxy_tools: true,
  mcp_sessions: true,
  oauth_refresh_state: true,
  approvals: true,
  approval_push_subscriptions: true,
  device_polls: true,
};
export const expectedTables = Object.keys(tableNames).sort();

const now = '2026-01-01T00:00:00.000Z';

export const credentialRow = (overrides: Partial<CredentialTable> = {}): CredentialTable => ({
  id: 'cred_1',
  namespace: 'default',
  name: 'slack',
  type: 'api_key',
  description: '',
  scopes: '[]',
  allowed_hosts: '["slack.com"]',
  base_url: null,
  oauth_app_id: null,
  injection: '{}',
  status: 'active',
  expires_at: null,
  subject: null,
  data_key_id: 'dk_1',
  current_version: 1,
  created_at: now,
  updated_at: now,
  ...overrides,
});

export const appliedMigrations = async (store: Store): Promise<string[]> => {
  const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(
    store.db,
  );
  return rows.map((row) => row.name);
};

const countRows = async (store: Store, table: keyof Database): Promise<number> => {
  const row = await store.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .executeTakeFirstOrThrow();
  // PostgreSQL returns count(*) as a bigint string, SQLite as a number.
  return Number(row.n);
};

/**
 * The store checks every dialect must pass. Call inside a `describe`; `createTarget` gives each test a
 * fresh, empty database.
 */
export const runStoreContract = (createTarget: () => Promise<StoreTarget>): void => {
  let target: StoreTarget;
  const openStores = new Set<Store>();

  const open = async (): Promise<Store> => {
    const store = await openStore(target.options);
    openStores.add(store);
    return store;
  };
  const close = async (store: Store): Promise<void> => {
    openStores.delete(store);
    await store.close();
  };

  beforeEach(async () => {
    target = await createTarget();
  });

  afterEach(async () => {
    for (const store of [...openStores]) await close(store);
    await target.cleanup();
  });

  it('opens with its dialect and a location that names the database', async () => {
    const store = await open();
    expect(store.dialect).toBe(target.dialect);
    expect(store.location).toBe(target.location);
    await pingDatabase(store.db);
  });

  it('applies every migration to a fresh database and creates the tables', async () => {
    const store = await open();
    // Later migrations follow the first; checking only the first keeps this valid when they come.
    expect((await appliedMigrations(store))[0]).toBe('0001_core');
    const tables = await store.db.introspection.getTables();
    expect(tables.map((table) => table.name).sort()).toEqual(expectedTables);
  });

  it('migrates idempotently: migrating again and reopening change nothing and keep the data', async () => {
    const first = await open();
    const applied = await appliedMigrations(first);
    await first.db
      .insertInto('vault_state')
      .values({ key: 'mode', value: '"platform"', updated_at: now })
      .execute();
    expect(await migrateToLatest(first.db)).toEqual([]);
    await close(first);

    const second = await open();
    expect(await appliedMigrations(second)).toEqual(applied);
    const rows = await second.db.selectFrom('vault_state').selectAll().execute();
    expect(rows).toEqual([{ key: 'mode', value: '"platform"', updated_at: now }]);
  });

  it('writes nothing when a transaction throws', async () => {
    const store = await open();
    const attempt = store.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('vault_state')
        .values({ key: 'mode', value: '"platform"', updated_at: now })
        .execute();
      await trx.insertInto('credentials').values(credentialRow()).execute();
      throw new Error('abort after two writes');
    });
    await expect(attempt).rejects.toThrow('abort after two writes');
    expect(await countRows(store, 'vault_state')).toBe(0);
    expect(await countRows(store, 'credentials')).toBe(0);
  });

  it('rolls back earlier statements when a later one violates a constraint', async () => {
    const store = await open();
    await store.db.insertInto('credentials').values(credentialRow()).execute();
    const attempt = store.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('vault_state')
        .values({ key: 'mode', value: '"platform"', updated_at: now })
        .execute();
      // Same (namespace, name) as the row above under a new id: the unique constraint must reject it.
      await trx
        .insertInto('credentials')
        .values(credentialRow({ id: 'cred_2' }))
        .execute();
    });
    await expect(attempt).rejects.toThrow();
    expect(await countRows(store, 'vault_state')).toBe(0);
    expect(await countRows(store, 'credentials')).toBe(1);
  });

  it('keeps what a committed transaction wrote, for the next connection too', async () => {
    const first = await open();
    await first.db.transaction().execute(async (trx) => {
      await trx.insertInto('credentials').values(credentialRow()).execute();
      await trx
        .insertInto('credential_versions')
        .values({ credential_id: 'cred_1', version: 1, ciphertexts: '{}', created_at: now })
        .execute();
    });
    await close(first);

    const second = await open();
    expect(await countRows(second, 'credentials')).toBe(1);
    expect(await countRows(second, 'credential_versions')).toBe(1);
  });
};
