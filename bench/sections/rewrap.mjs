// @ts-check
// Section `rewrap`: the re-wrap of BENCH_REWRAP_COUNT data keys after a key rotation, on every store,
// each in a child process of its own (rewrap-child.mjs).

import { forkChild } from '../children.mjs';
import { rewrapTable } from '../report.mjs';
import { log, settings, tempDir } from '../settings.mjs';
import { judge } from '../verdicts.mjs';

/**
 * @param {string} store
 * @param {Record<string, string>} env
 * @param {(() => number | undefined) | undefined} [dbCpu]
 */
const benchRewrap = async (store, env, dbCpu) => {
  log(`re-wrap on ${store}: seeding ${settings.rewrapCount} credentials, then rotating the key`);
  let dbStart;
  let dbEnd;
  /** @type {any} */
  let result;
  const handle = forkChild('rewrap-child.mjs', [String(settings.rewrapCount)], env, (message) => {
    if (message.type === 'progress') log(`  ${store}: ${message.text}`);
    if (message.type === 'phase' && message.phase === 'rewrap-start') dbStart = dbCpu?.();
    if (message.type === 'phase' && message.phase === 'rewrap-end') dbEnd = dbCpu?.();
    if (message.type === 'result') result = message.result;
  });
  const code = await handle.exited;
  if (code !== 0 || !result) throw new Error(`the re-wrap on ${store} failed (exit ${code})`);
  log(`  ${store}: ${result.done} keys in ${result.jobSeconds.toFixed(1)} s`);
  if (result.jobDoneCounter !== result.done) {
    log(
      `  warning: the job counted ${result.jobDoneCounter} keys moved, but ${result.done} are under its key`,
    );
  }
  for (const message of result.jobLog) log(`  vault log (warn or worse): ${message}`);
  return {
    store,
    ...result,
    dbCpuSeconds: dbStart === undefined || dbEnd === undefined ? undefined : dbEnd - dbStart,
  };
};

/**
 * @param {{ postgres?: { createDatabase: () => Promise<string> }, dbCpu?: () => number | undefined }} context
 */
const run = async ({ postgres, dbCpu }) => {
  const rewraps = [await benchRewrap('sqlite', { BENCH_DATA_DIR: tempDir() })];
  if (postgres) {
    const env = { BENCH_DATA_DIR: tempDir(), BENCH_CHILD_DATABASE_URL: await postgres.createDatabase() };
    rewraps.push(await benchRewrap('postgres', env, dbCpu));
  }
  return rewraps;
};

/** @typedef {Awaited<ReturnType<typeof run>>} RewrapResult */

/** @param {RewrapResult} rewraps */
const verdicts = (rewraps) =>
  rewraps.map((r) =>
    judge('rewrap-100k', {
      subject: r.store,
      value: r.jobSeconds,
      scale: r.done,
      detail: `${r.done} keys`,
    }),
  );

/**
 * @param {RewrapResult} rewraps
 * @returns {[string, string][]}
 */
const report = (rewraps) => [['Re-wrap after a key rotation', rewrapTable(rewraps)]];

/** @type {import('./section.mjs').Section<Parameters<typeof run>[0], RewrapResult>} */
export const rewrapSection = { name: 'rewrap', run, verdicts, report };
