// @ts-check
// `npm run bench`: the sections in bench/sections/ (all by default; BENCH_ONLY=retrieval,audit picks
// some), each judged against bench/targets.mjs. Prints tables and verdicts and writes
// bench/results/latest.json. The settings (BENCH_*) are read in settings.mjs; docs/benchmarks.md
// lists them.

import { execFileSync } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './children.mjs';
import { busyShare, machineCpuSeconds, postgresCpuSeconds } from './cpu.mjs';
import { openPostgres } from './postgres.mjs';
import { adminSection } from './sections/admin.mjs';
import { auditSection } from './sections/audit.mjs';
import { mcpProxySection } from './sections/mcp-proxy.mjs';
import { oauthRefreshSection } from './sections/oauth-refresh.mjs';
import { proxySection } from './sections/proxy.mjs';
import { policiesSection } from './sections/policies.mjs';
import { retrievalSection } from './sections/retrieval.mjs';
import { rewrapSection } from './sections/rewrap.mjs';
import { cleanup, log, onCleanup, settings, tempDir } from './settings.mjs';
import { verdictLines } from './verdicts.mjs';

/** @typedef {import('./measure.mjs').Target} Target */
/** @typedef {import('./verdicts.mjs').Verdict} Verdict */

const here = dirname(fileURLToPath(import.meta.url));

for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** Read-only git facts, so a result names the code it measured (the bench builds the working tree). */
const gitInfo = () => {
  try {
    /** @param {string[]} args */
    const git = (...args) => execFileSync('git', args, { cwd: here, encoding: 'utf8' }).trim();
    const changed = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
    return { commit: git('rev-parse', '--short', 'HEAD'), uncommittedSrcFiles: changed };
  } catch {
    return { commit: undefined, uncommittedSrcFiles: undefined };
  }
};

const machine = () => ({
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  platform: `${os.platform()} ${os.release()}`,
  loadAverageAtStart: os.loadavg(),
  busyBeforeStart: /** @type {number | undefined} */ (undefined),
  ...gitInfo(),
});

/**
 * A vault server on `store`, seeded with `credentials` credentials and (for the retrieval section) an
 * agent granted `settings.retrievalTargets` of them. Its JSON log lines go to `vault.log` in its data
 * dir, as a deployment's would go to a file or a pipe rather than a terminal.
 * @param {{ store: 'sqlite' | 'postgres', config: 'default' | 'logging off', credentials: number,
 *   retrieval: boolean, databaseUrl?: string, dbCpu?: () => number | undefined }} options
 * @returns {Promise<Target>}
 */
const startVault = async ({ store, config, credentials, retrieval, databaseUrl, dbCpu }) => {
  const dataDir = tempDir();
  const env = {
    BENCH_DATA_DIR: dataDir,
    ...(databaseUrl ? { BENCH_CHILD_DATABASE_URL: databaseUrl } : {}),
    ...(config === 'logging off' ? { BENCH_VAULT_LOG_LEVEL: 'silent' } : {}),
  };
  const server = await startServer('vault', env, { stdout: openSync(join(dataDir, 'vault.log'), 'a') });
  const label = config === 'default' ? `vault/${store}` : `vault/${store} (${config})`;
  /** @type {Target} */
  const target = { label, store, config, server, vault: true, dbCpu };
  log(`${label}: seeding ${credentials} credentials`);
  await server.call('seed', { count: credentials, prefix: 'read-' });
  if (retrieval) {
    log(`${label}: an agent and ${settings.retrievalTargets} reveal grants`);
    target.retrievalAccess = await server.call('setupRetrieval', {
      targets: settings.retrievalTargets,
      prefix: 'read-',
      agentName: 'bench-agent',
    });
  }
  return target;
};

const main = async () => {
  const started = Date.now();
  const info = machine();
  /** @param {import('./settings.mjs').SectionName} section */
  const has = (section) => settings.sections.includes(section);
  log(
    `${info.cpus} CPU(s) (${info.cpuModel}), node ${info.node}; sections ${settings.sections.join(', ')}; ` +
      `${settings.rounds} rounds of ${settings.duration} s, ${settings.connections} connections` +
      (settings.smoke ? ' (smoke run: the figures mean nothing)' : ''),
  );
  /** @type {string[]} */
  const notes = [];
  const before = machineCpuSeconds();
  await new Promise((resolve) => setTimeout(resolve, settings.idleCheckMs));
  info.busyBeforeStart = busyShare(before, machineCpuSeconds());
  if (info.busyBeforeStart !== undefined && info.busyBeforeStart > 0.25) {
    const warning = `the machine was ${(info.busyBeforeStart * 100).toFixed(0)} % busy before the bench started (other work on it): expect low and noisy figures`;
    notes.push(warning);
    log(`warning: ${warning}`);
  }

  /** @type {any} */
  let postgres;
  /** @type {(() => number | undefined) | undefined} */
  let dbCpu;
  const needsPostgres = has('admin') || has('retrieval') || has('rewrap');
  if (settings.postgres && needsPostgres) {
    const opened = await openPostgres(log);
    if (opened.skipped) {
      notes.push(opened.skipped);
      log(opened.skipped);
    } else {
      postgres = opened;
      onCleanup(async () => {
        await opened.stop?.();
      });
      log(`PostgreSQL: ${opened.source}`);
      const pid = /** @type {any} */ (opened).postmasterPid?.();
      if (pid) dbCpu = () => postgresCpuSeconds(pid);
      else notes.push('PostgreSQL CPU is not measured on a server this run did not start');
    }
  } else if (needsPostgres) {
    notes.push('PostgreSQL skipped: BENCH_POSTGRES=0');
  }
  for (const dir of [settings.profileDir, settings.heapProfileDir].filter((d) => d !== undefined)) {
    mkdirSync(dir, { recursive: true });
    notes.push(
      `the vault servers were profiled during the retrieval runs (profiles in ${dir}): figures are lower than without`,
    );
  }

  /** @type {Record<string, unknown>} */
  const results = {};
  /** @type {Verdict[]} */
  const verdicts = [];
  /** @type {[string, string][]} */
  const tables = [];
  /**
   * Runs one section and keeps its figures, verdicts and tables.
   * @template C, R
   * @param {import('./sections/section.mjs').Section<C, R>} section
   * @param {C} context
   */
  const runSection = async (section, context) => {
    log(`section ${section.name}`);
    const result = await section.run(context);
    results[section.name] = result;
    verdicts.push(...section.verdicts(result));
    tables.push(...section.report(result));
  };

  // The admin and retrieval sections share the ceiling and the vaults in their default configuration.
  if (has('admin') || has('retrieval')) {
    const ceiling = { label: 'node:http', server: await startServer('ceiling'), vault: false };
    const credentials = Math.max(
      has('admin') ? settings.readTargets : 0,
      has('retrieval') ? settings.retrievalTargets : 0,
    );
    const common = { credentials, retrieval: has('retrieval') };
    /** @type {Target[]} */
    const targets = [ceiling, await startVault({ store: 'sqlite', config: 'default', ...common })];
    if (postgres) {
      const databaseUrl = await postgres.createDatabase();
      targets.push(await startVault({ store: 'postgres', config: 'default', databaseUrl, dbCpu, ...common }));
    }
    if (has('admin')) await runSection(adminSection, { targets });
    if (has('retrieval')) {
      const floor = { label: 'fastify', server: await startServer('fastify'), vault: false };
      const logOff = settings.logOffRuns
        ? [await startVault({ store: 'sqlite', config: 'logging off', ...common })]
        : [];
      await runSection(retrievalSection, { targets, floor, logOff });
      for (const target of [floor, ...logOff]) await target.server.stop();
    }
    for (const target of targets) await target.server.stop();
  }
  if (has('rewrap')) await runSection(rewrapSection, { postgres, dbCpu });
  if (has('audit')) await runSection(auditSection, {});
  if (has('proxy')) await runSection(proxySection, {});
  if (has('policies')) await runSection(policiesSection, {});
  if (has('mcp-proxy')) await runSection(mcpProxySection, {});
  if (has('oauth-refresh')) await runSection(oauthRefreshSection, {});

  for (const [heading, table] of tables) console.log(`\n${heading}\n\n${table}`);
  console.log('\nTargets (bench/targets.mjs)');
  for (const line of verdictLines(verdicts)) console.log(line);
  for (const note of notes) console.log(`  note: ${note}`);

  const out = settings.resultsFile;
  const totalSeconds = (Date.now() - started) / 1000;
  const saved = {
    finishedAt: new Date().toISOString(),
    totalSeconds,
    machine: { ...info, loadAverageAtEnd: os.loadavg() },
    settings,
    postgres: postgres?.source ?? null,
    notes,
    ...results,
    verdicts,
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(saved, null, 2)}\n`);
  log(`results written to ${out} (${totalSeconds.toFixed(0)} s in all)`);
};

try {
  await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await cleanup();
}
