import { describe } from 'vitest';
import { retrievalContract } from './retrieval-contract.js';

describe('agent retrieval on SQLite', () => {
  retrievalContract(async () => ({}));
});
