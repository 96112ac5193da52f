import { describe } from 'vitest';
import { keyedChainContract } from './keyed-chain-contract.js';

describe('the keyed audit chain on SQLite', () => {
  keyedChainContract(async () => ({}));
});
