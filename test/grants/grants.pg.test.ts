import { createTestDatabase, describePostgres } from '../helpers/postgres.js';
import { grantContract } from './grant-contract.js';

describePostgres('grants on PostgreSQL', () => {
  grantContract(async () => {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  });
});
