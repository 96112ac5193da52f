import { adminApiContract } from '../contracts/admin-api-contract.js';
import { createTestDatabase, describePostgres } from '../helpers/postgres.js';

describePostgres('admin API on PostgreSQL', () => {
  adminApiContract(async () => {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  });
});
