import { describe } from 'vitest';
import { accessCacheContract } from './access-cache-contract.js';

describe('access cache on SQLite', () => {
  accessCacheContract(async () => ({}));
});
