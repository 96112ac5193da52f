import { createTestDatabase, describePostgres } from '../helpers/postgres.js';
import { accessCacheContract } from './access-cache-contract.js';

describePostgres('access cache on PostgreSQL', () => {
  accessCacheContract(async () => {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  });
});
