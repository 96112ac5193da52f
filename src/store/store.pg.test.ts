import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createTestDatabase, describePostgres, type TestDatabase } from '../../test/helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../../test/helpers/sqlite.js';
import { appliedMigrations, expectedTables, runStoreContract } from '../../test/helpers/store-contract.js';
import { openStore, redactUrl, type Store, sqliteFileName } from './database.js';

describePostgres('store on PostgreSQL', () => {
  runStoreContract(async () => {
    const database = await createTestDatabase();
    const temp = await createTempDataDir();
    return {
      dialect: 'postgres',
      options: { databaseUrl: database.url, dataDir: temp.dir, poolSize: 4 },
      location: redactUrl(database.url),
      cleanup: async () => {
        await database.drop();
        await temp.cleanup();
      },
    };
  });
});

describePostgres('PostgreSQL store specifics', () => {
  let database: TestDatabase;
  let temp: TempDataDir;
  const stores: Store[] = [];

  beforeEach(async () => {
    database = await createTestDatabase();
    temp = await createTempDataDir();
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await database.drop();
    await temp.cleanup();
  });

  const open = async (): Promise<Store> => {
    const store = await openStore({ databaseUrl: database.url, dataDir: temp.dir, poolSize: 2 });
    stores.push(store);
    return store;
  };

  it('never shows the password in its location, and writes no SQLite file', async () => {
    const store = await open();
    const password = new URL(database.url).password;
    if (password) {
      expect(store.location).not.toContain(password);
      expect(store.location).toContain(':***@');
    }
    expect(existsSync(join(temp.dir, sqliteFileName))).toBe(false);
  });

  it('migrates a fresh database once when several replicas open it at the same time', async () => {
    // Without the migration lock a second replica would run 0001 again and fail on an existing table.
    const replicas = await Promise.all([open(), open(), open()]);
    const applied = await appliedMigrations(replicas[0]!);
    expect(applied[0]).toBe('0001_core');
    for (const replica of replicas) {
      expect(await appliedMigrations(replica)).toEqual(applied);
    }
    const tables = await replicas[0]!.db.introspection.getTables();
    expect(tables.map((table) => table.name).sort()).toEqual(expectedTables);
  });

  it('fails to open with a message naming the problem when the database does not exist', async () => {
    const missing = new URL(database.url);
    missing.pathname = '/tv_test_does_not_exist';
    await expect(openStore({ databaseUrl: missing.toString(), dataDir: temp.dir })).rejects.toThrow(
      /database migration failed: .*does not exist/,
    );
  });
});
