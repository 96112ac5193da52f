import { agentAdminContract } from './agent-admin-contract.js';
import { agentAuthContract } from './agent-auth-contract.js';
import { createTestDatabase, describePostgres } from '../helpers/postgres.js';

const onPostgres = async () => {
  const database = await createTestDatabase();
  return { databaseUrl: database.url, cleanup: () => database.drop() };
};

describePostgres('agent admin API on PostgreSQL', () => {
  agentAdminContract(onPostgres);
});

describePostgres('agent authentication on PostgreSQL', () => {
  agentAuthContract(onPostgres);
});
