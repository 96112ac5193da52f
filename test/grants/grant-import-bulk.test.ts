import { describe } from 'vitest';
import { bulkImportContract } from './grant-import-bulk.js';

describe('a large grant import on SQLite', () => {
  bulkImportContract(async () => ({}), { healthzMs: 200 });
});
