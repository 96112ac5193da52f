import { afterEach, expect, it } from 'vitest';
import { waitForJob } from '../helpers/jobs.js';
import { startTestVault, type TestVault, type TestVaultOptions } from '../helpers/vault.js';

/**
 * One loop per job: a poll that fires while the runner is still reading the job (real I/O, as on
 * PostgreSQL) must not start a second loop, or every batch is re-wrapped twice and miscounted.
 */
export const jobRunnerContract = (
  storeOptions: () => Promise<TestVaultOptions & { cleanup?: () => Promise<void> }>,
) => {
  let t: TestVault | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await t?.stop();
    await cleanup?.();
    t = undefined;
  });

  it('runs one loop per job even when polls fire while it starts, and counts every key once', async () => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    t = await startTestVault({ ...options, keyJob: { pollMs: 1, batchSize: 50 } });
    const { credentials, keys } = t.vault.services;
    for (let i = 0; i < 600; i++) {
      await credentials.create('default', { name: `c-${i}`, type: 'api_key', secret: { api_key: `k-${i}` } });
    }
    const job = await keys.rotate();
    const status = await waitForJob(() => keys.status(), { timeoutMs: 20_000 });
    // The audit chain key is one more data key (src/audit/audit-keys.ts).
    expect(status.job).toMatchObject({ id: job.id, total: 601, done: 601, remaining: 0 });
    expect(status.dataKeys).toEqual([{ ref: 'platform:2', count: 601 }]);
    expect(t.logs().match(/key re-wrap running/g)).toHaveLength(1);
  });
};
