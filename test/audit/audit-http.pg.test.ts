import { createTestDatabase, describePostgres } from '../helpers/postgres.js';
import { auditHttpContract } from './audit-http-contract.js';

describePostgres('audit at the HTTP edge on PostgreSQL', () => {
  auditHttpContract(async () => {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  });
});
