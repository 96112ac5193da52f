import { openStore } from '../../src/store/database.js';
import { createTestDatabase, describePostgres } from '../helpers/postgres.js';
import { auditLogContract } from './audit-log-contract.js';

describePostgres('audit log on PostgreSQL', () => {
  auditLogContract(async () => {
    const database = await createTestDatabase();
    const open = () => openStore({ databaseUrl: database.url, dataDir: '/nonexistent', poolSize: 4 });
    const store = await open();
    return { store, openReplica: open, cleanup: () => database.drop() };
  });
});
