import { describe } from 'vitest';
import { accessCacheContract } from './access-cache-contract.js';
import { accessCacheScopeContract } from './access-cache-scope-contract.js';

describe('access cache on SQLite', () => {
  accessCacheContract(async () => ({}));
});

describe('access cache scopes on SQLite, two replicas on one database', () => {
  accessCacheScopeContract(async () => ({}));
});
