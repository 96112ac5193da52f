import { startTestVault } from '../helpers/vault.js';
import { perUserCredentialsContract } from './per-user-contract.js';

perUserCredentialsContract('SQLite', () => startTestVault());
