import { createTestDatabase, describePostgres } from '../helpers/postgres.js';
import { rotationContract } from './rotation-contract.js';

describePostgres('platform key rotation on PostgreSQL', () => {
  rotationContract(async () => {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  });
});
