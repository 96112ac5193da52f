import { describe } from 'vitest';
import { grantContract } from './grant-contract.js';

describe('grants on SQLite', () => {
  grantContract(async () => ({}));
});
