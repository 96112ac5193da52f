import { describe } from 'vitest';
import { canaryContract, sqliteFiles } from '../contracts/canary-contract.js';

describe('a canary secret on SQLite', () => {
  canaryContract(
    async () => ({}),
    async (t) => sqliteFiles(t),
  );
});
