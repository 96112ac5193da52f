import { describe } from 'vitest';
import { agentAdminContract } from './agent-admin-contract.js';
import { agentAuthContract } from './agent-auth-contract.js';

describe('agent admin API on SQLite', () => {
  agentAdminContract(async () => ({}));
});

describe('agent authentication on SQLite', () => {
  agentAuthContract(async () => ({}));
});
