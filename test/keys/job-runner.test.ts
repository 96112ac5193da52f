import { describe } from 'vitest';
import { jobRunnerContract } from '../contracts/job-runner-contract.js';

describe('key job runner on SQLite', () => {
  jobRunnerContract(async () => ({}));
});
