import { describe } from 'vitest';
import { webhookModeContract } from './webhook-mode-contract.js';

describe('webhook mode on SQLite', () => {
  webhookModeContract(async () => ({}));
});
