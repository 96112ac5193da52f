import { createTestDatabase, describePostgres } from '../helpers/postgres.js';
import { accessCacheContract } from './access-cache-contract.js';
import { accessCacheScopeContract } from './access-cache-scope-contract.js';

describePostgres('access cache on PostgreSQL', () => {
  accessCacheContract(async () => {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  });
});

describePostgres('access cache scopes on PostgreSQL, two replicas on one database', () => {
  accessCacheScopeContract(async () => {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  });
});
