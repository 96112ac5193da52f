import { afterAll } from 'vitest';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { startTestVault } from '../helpers/vault.js';
import { perUserCredentialsContract } from './per-user-contract.js';

// Migration 0008's unique index on (namespace, name, coalesce(subject, '')) and the subject trigger,
// on PostgreSQL.
describePostgres('per-user credentials (PostgreSQL)', () => {
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    for (const database of databases) await database.drop();
  });
  perUserCredentialsContract('PostgreSQL', async () => {
    const database = await createTestDatabase();
    databases.push(database);
    return startTestVault({ databaseUrl: database.url });
  });
});
