import { openStore } from '../../src/store/database.js';
import { createTempDataDir } from '../helpers/sqlite.js';
import { describeOnEveryStore } from '../helpers/stores.js';
import { auditLogContract } from './audit-log-contract.js';

describeOnEveryStore('audit log', (store) =>
  auditLogContract(async () => {
    if (store.dialect === 'sqlite') {
      const dir = await createTempDataDir();
      return { store: await openStore({ dataDir: dir.dir }), cleanup: () => dir.cleanup() };
    }
    const database = await store.fresh();
    const open = () => openStore({ databaseUrl: database.databaseUrl, dataDir: '/nonexistent', poolSize: 4 });
    return { store: await open(), openReplica: open, cleanup: database.cleanup };
  }),
);
