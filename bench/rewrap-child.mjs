// Re-wrap benchmark, in its own process: seed BENCH_REWRAP_COUNT real credentials into an empty vault
// (SQLite in BENCH_DATA_DIR, or BENCH_CHILD_DATABASE_URL), rotate the platform key, and time the
// background job the vault itself runs until it records itself finished. Then prove the result: every
// data key sits under the new key version, a sample of secrets still decrypts, and `keys verify` passes.

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createVault, loadConfig, vaultStateRepo } from './vault-modules.mjs';
import { seedCredentials, seededSecretPrefix } from './seed.mjs';

const count = Number(process.argv[2]);
const dataDir = process.env.BENCH_DATA_DIR;
const report = (message) => process.send?.(message);

const config = loadConfig(
  {
    dataDir,
    databaseUrl: process.env.BENCH_CHILD_DATABASE_URL || undefined,
    port: '0',
    logLevel: 'warn',
  },
  {},
);
// Warnings and errors are kept: a job that paused on an error and resumed is slower for a reason.
const logLines = [];
const vault = await createVault(config, { logDestination: { write: (line) => void logLines.push(line) } });
const { credentials, keys } = vault.services;

const checkSample = async (label) => {
  for (let k = 0; k < 25; k++) {
    const i = Math.floor((k / 25) * count);
    const { secret } = await credentials.readSecret('default', `rw-${i}`);
    if (!secret.api_key.startsWith(seededSecretPrefix(i)))
      throw new Error(`${label}: rw-${i} decrypted wrong`);
  }
};

try {
  let started = performance.now();
  await seedCredentials(vault, dataDir, {
    count,
    prefix: 'rw-',
    onProgress: (done) => {
      if (done % 20_000 === 0 || done === count)
        report({ type: 'progress', text: `seeded ${done}/${count}` });
    },
  });
  const seedSeconds = (performance.now() - started) / 1000;
  await checkSample('after seeding');

  report({ type: 'phase', phase: 'rewrap-start' });
  const cpuBefore = process.cpuUsage();
  started = performance.now();
  const job = await keys.rotate();
  let finished;
  for (;;) {
    // One small row read per poll; keys.status() would count 100k rows each time and slow the job.
    const current = await vaultStateRepo.getJob(vault.store.db);
    if (current?.id === job.id && current.finishedAt) {
      finished = current;
      break;
    }
    await sleep(50);
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  report({ type: 'phase', phase: 'rewrap-end' });
  const jobSeconds = (Date.parse(finished.finishedAt) - Date.parse(finished.startedAt)) / 1000;

  const status = await keys.status();
  const underTarget = status.dataKeys.find((d) => d.ref === finished.target)?.count ?? 0;
  const jobLog = [...new Set(logLines.map((line) => JSON.parse(line).msg))].slice(0, 10);
  await checkSample('after re-wrap');
  started = performance.now();
  const verified = await keys.verify();
  const verifySeconds = (performance.now() - started) / 1000;

  report({
    type: 'result',
    result: {
      count,
      batchSize: config.keyJobBatchSize,
      seedSeconds,
      target: finished.target,
      // Keys found under the new version afterwards; the job's own counter is kept beside it.
      done: underTarget,
      jobDoneCounter: finished.done,
      jobLog,
      jobSeconds,
      wallSeconds,
      keysPerSecond: underTarget / jobSeconds,
      vaultCpuSeconds: (cpu.user + cpu.system) / 1e6,
      // The seeded keys and the vault's audit chain key (src/audit/audit-keys.ts).
      allUnderNewKey: underTarget === count + 1 && status.dataKeys.length === 1,
      verify: {
        ok: verified.ok,
        checked: verified.checked,
        failures: verified.failures.length,
        verifySeconds,
      },
    },
  });
} finally {
  await vault.stop();
}
process.exit(0);
