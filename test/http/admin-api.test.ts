import { describe } from 'vitest';
import { adminApiContract } from '../contracts/admin-api-contract.js';

describe('admin API on SQLite', () => {
  adminApiContract(async () => ({}));
});
