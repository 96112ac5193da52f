import { describe } from 'vitest';
import { rotationContract } from './rotation-contract.js';

describe('platform key rotation on SQLite', () => {
  rotationContract(async () => ({}));
});
