import { jobRunnerContract } from '../contracts/job-runner-contract.js';
import { createTestDatabase, describePostgres } from '../helpers/postgres.js';

describePostgres('key job runner on PostgreSQL', () => {
  jobRunnerContract(async () => {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  });
});
