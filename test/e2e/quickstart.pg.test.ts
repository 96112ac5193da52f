import { quickstartContract } from '../contracts/quickstart-contract.js';
import { createTestDatabase, describePostgres } from '../helpers/postgres.js';

describePostgres('quick start on PostgreSQL (--database-url)', () => {
  quickstartContract(async () => {
    const database = await createTestDatabase();
    return { env: { TOKENVAULT_DATABASE_URL: database.url }, cleanup: () => database.drop() };
  });
});
