import { canaryContract, postgresRows } from '../contracts/canary-contract.js';
import { createTestDatabase, describePostgres } from '../helpers/postgres.js';

describePostgres('a canary secret on PostgreSQL', () => {
  canaryContract(async () => {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  }, postgresRows);
});
