import { createTestDatabase, describePostgres } from '../helpers/postgres.js';
import { retrievalContract } from './retrieval-contract.js';

describePostgres('agent retrieval on PostgreSQL', () => {
  retrievalContract(async () => {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  });
});
