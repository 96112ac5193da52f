import { createTestDatabase, describePostgres } from '../helpers/postgres.js';
import { webhookModeContract } from './webhook-mode-contract.js';

describePostgres('webhook mode on PostgreSQL', () => {
  webhookModeContract(async () => {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  });
});
