import { describe } from 'vitest';
import { openStore } from '../../src/store/database.js';
import { createTempDataDir } from '../helpers/sqlite.js';
import { auditLogContract } from './audit-log-contract.js';

describe('audit log on SQLite', () => {
  auditLogContract(async () => {
    const dir = await createTempDataDir();
    const store = await openStore({ dataDir: dir.dir });
    return { store, cleanup: () => dir.cleanup() };
  });
});
