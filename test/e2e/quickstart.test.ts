import { describe } from 'vitest';
import { quickstartContract } from '../contracts/quickstart-contract.js';

describe('quick start on the embedded SQLite store', () => {
  quickstartContract(async () => ({ env: {} }));
});
