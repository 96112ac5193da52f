#!/usr/bin/env node
// `npm run bench`: admin API create/read throughput on SQLite and PostgreSQL against a bare node:http
// ceiling, the server time of a read, and the re-wrap of BENCH_REWRAP_COUNT data keys after a key
// rotation. Prints tables and writes bench/results/latest.json. See docs/benchmarks.md.
//
// BENCH_DURATION     seconds per measured load run (default 10)
// BENCH_ROUNDS       measured runs per server and operation, interleaved; medians are kept (default 3)
// BENCH_CONNECTIONS  concurrent connections per load run (default 10)
// BENCH_REWRAP_COUNT credentials seeded for the re-wrap (default 100000)
// BENCH_READ_TARGETS credentials the read runs pick from at random (default 10000)
// BENCH_POSTGRES=0   skip PostgreSQL
// TOKENVAULT_BENCH_DATABASE_URL  admin URL of a PostgreSQL server to use instead of a throwaway one

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { forkChild, killChildren, startServer } from './children.mjs';
import { busyShare, machineCpuSeconds, postgresCpuSeconds } from './cpu.mjs';
import { durationBetween, runLoad, scrapeDuration } from './load.mjs';
import { openPostgres } from './postgres.mjs';
import { injectTable, loadTable, rewrapTable, serverTimeTable } from './report.mjs';

const here = dirname(fileURLToPath(import.meta.url));

const positive = (name, fallback) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
};

const settings = {
  duration: positive('BENCH_DURATION', 10),
  rounds: Math.round(positive('BENCH_ROUNDS', 3)),
  connections: Math.round(positive('BENCH_CONNECTIONS', 10)),
  rewrapCount: Math.round(positive('BENCH_REWRAP_COUNT', 100_000)),
  readTargets: Math.round(positive('BENCH_READ_TARGETS', 10_000)),
  postgres: process.env.BENCH_POSTGRES !== '0',
  sequentialReads: 2000,
};
settings.warmup = Math.min(3, Math.max(1, Math.round(settings.duration / 5)));

const log = (text) => console.log(`[bench] ${text}`);

// ---------------------------------------------------------------------------------------------------
// Cleanup that must happen even on failure or Ctrl-C: child processes, temp dirs, the PostgreSQL server.

const tempDirs = [];
let postgres;

const cleanup = async () => {
  killChildren();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  const pg = postgres;
  postgres = undefined;
  await pg?.stop?.();
};

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

const tempDir = () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'tokenvault-bench-'));
  tempDirs.push(dir);
  return dir;
};

// ---------------------------------------------------------------------------------------------------
// Workloads: the same request bodies and paths go to the ceiling and to the vault, so the load
// generator does the same work for both.

const workloads = [
  {
    operation: 'POST (create)',
    route: { method: 'POST', path: '/v1/admin/credentials' },
    requests: (token) => {
      let n = 0;
      return (req) => {
        n += 1;
        return {
          ...req,
          method: 'POST',
          path: '/v1/admin/credentials',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            name: `c-${n}`,
            type: 'api_key',
            secret: { api_key: `sk-bench-create-${n}` },
          }),
        };
      };
    },
  },
  {
    operation: 'GET (read)',
    route: { method: 'GET', path: '/v1/admin/credentials/:name' },
    requests: (token) => (req) => ({
      ...req,
      method: 'GET',
      path: `/v1/admin/credentials/read-${Math.floor(Math.random() * settings.readTargets)}`,
      headers: { authorization: `Bearer ${token}` },
    }),
  },
];

/** One measured run, with the server's CPU time, event-loop use and (vault only) its own histogram. */
const measureOnce = async (target, workload, setupRequest) => {
  const { server } = target;
  const route = target.vault ? workload.route : undefined;
  const histogramBefore = route ? await scrapeDuration(server.url, route.method, route.path) : undefined;
  const dbBefore = target.dbCpu?.();
  await server.call('mark');
  const machineBefore = machineCpuSeconds();
  const ownBefore = process.cpuUsage();
  const result = await runLoad({
    url: server.url,
    connections: settings.connections,
    duration: settings.duration,
    setupRequest,
  });
  const ownCpu = process.cpuUsage(ownBefore);
  const machineAfter = machineCpuSeconds();
  const usage = await server.call('measure');
  const dbAfter = target.dbCpu?.();
  const histogramAfter = route ? await scrapeDuration(server.url, route.method, route.path) : undefined;
  if (result.non2xx + result.errors > 0) {
    log(`warning: ${target.label} ${workload.operation}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    log(`  statuses: ${JSON.stringify(result.statuses)}`);
  }
  const perRequest = (ms) => ms / Math.max(result.requests, 1);
  const dbSeconds = dbBefore === undefined || dbAfter === undefined ? undefined : dbAfter - dbBefore;
  // Whatever else ran on the machine meanwhile (other people's builds and tests, the idle servers):
  // busy CPU that was neither the load generator, nor this server, nor its database.
  const ours = (ownCpu.user + ownCpu.system) / 1e6 + usage.cpuMs / 1000 + (dbSeconds ?? 0);
  const machineSeconds = machineAfter && machineBefore ? machineAfter.total - machineBefore.total : 0;
  const otherCpuShare =
    machineSeconds > 0
      ? Math.max(0, (machineAfter.busy - machineBefore.busy - ours) / machineSeconds)
      : undefined;
  return {
    ...result,
    serverCpuMsPerRequest: perRequest(usage.cpuMs),
    eventLoopUtilization: usage.eventLoopUtilization,
    dbCpuMsPerRequest: dbSeconds === undefined ? undefined : perRequest(dbSeconds * 1000),
    loadGeneratorCpuShare:
      machineSeconds > 0 ? (ownCpu.user + ownCpu.system) / 1e6 / machineSeconds : undefined,
    otherCpuShare,
    inServer: route ? durationBetween(histogramBefore, histogramAfter) : undefined,
  };
};

const median = (values) => {
  const sorted = values.filter((v) => v !== undefined && !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** Medians over the rounds of every figure; counts of failures are summed. */
const summarize = (label, operation, samples, ratios) => {
  const m = (pick) => median(samples.map(pick));
  return {
    server: label,
    operation,
    rounds: samples.length,
    rps: m((s) => s.rps),
    latencyMs: { p50: m((s) => s.latencyMs.p50), p99: m((s) => s.latencyMs.p99) },
    ratioToCeiling: ratios ? median(ratios) : undefined,
    serverCpuMsPerRequest: m((s) => s.serverCpuMsPerRequest),
    dbCpuMsPerRequest: m((s) => s.dbCpuMsPerRequest),
    eventLoopUtilization: m((s) => s.eventLoopUtilization),
    loadGeneratorCpuShare: m((s) => s.loadGeneratorCpuShare),
    otherCpuShare: m((s) => s.otherCpuShare),
    inServer: samples[0].inServer
      ? Object.fromEntries(Object.keys(samples[0].inServer).map((k) => [k, m((s) => s.inServer[k])]))
      : undefined,
    requests: samples.reduce((n, s) => n + s.requests, 0),
    non2xx: samples.reduce((n, s) => n + s.non2xx, 0),
    errors: samples.reduce((n, s) => n + s.errors, 0),
    perRound: samples.map((s, i) => ({
      rps: s.rps,
      p50: s.latencyMs.p50,
      p99: s.latencyMs.p99,
      serverCpuMsPerRequest: s.serverCpuMsPerRequest,
      dbCpuMsPerRequest: s.dbCpuMsPerRequest,
      ratioToCeiling: ratios?.[i],
      otherCpuShare: s.otherCpuShare,
    })),
  };
};

/**
 * Every target gets every workload once per round, the ceiling first, so a vault run and the ceiling
 * run it is compared with are at most 20 seconds apart; the ratio kept is the median of the per-round ratios.
 */
const benchLoad = async (targets) => {
  const samples = new Map();
  const generators = new Map();
  for (const target of targets) {
    for (const workload of workloads) {
      const key = `${target.label}|${workload.operation}`;
      // One generator per target and workload, so created names stay distinct across rounds.
      const setupRequest = workload.requests(target.server.token ?? 'tv_admin_ceiling');
      generators.set(key, setupRequest);
      samples.set(key, []);
      log(`warm-up: ${target.label} ${workload.operation} (${settings.warmup} s)`);
      await runLoad({
        url: target.server.url,
        connections: settings.connections,
        duration: settings.warmup,
        setupRequest,
      });
    }
  }
  for (let round = 1; round <= settings.rounds; round++) {
    for (const workload of workloads) {
      for (const target of targets) {
        const key = `${target.label}|${workload.operation}`;
        log(`round ${round}/${settings.rounds}: ${target.label} ${workload.operation}`);
        samples.get(key).push(await measureOnce(target, workload, generators.get(key)));
      }
    }
  }
  const ceiling = targets.find((t) => !t.vault);
  return targets.flatMap((target) =>
    workloads.map((workload) => {
      const own = samples.get(`${target.label}|${workload.operation}`);
      const base = samples.get(`${ceiling.label}|${workload.operation}`);
      const ratios = target.vault ? own.map((s, i) => s.rps / base[i].rps) : undefined;
      return summarize(target.label, workload.operation, own, ratios);
    }),
  );
};

const benchRewrap = async (store, env, dbCpu) => {
  log(`re-wrap on ${store}: seeding ${settings.rewrapCount} credentials, then rotating the key`);
  let dbStart;
  let dbEnd;
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

// ---------------------------------------------------------------------------------------------------

/** Read-only git facts, so a result names the code it measured (the bench builds the working tree). */
const gitInfo = () => {
  try {
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
  ...gitInfo(),
});

const verdictsFor = (runs, sequential, rewraps) => ({
  readServerTimeUnder1ms: sequential.map((seq) => {
    const run = runs.find((r) => r.server === `vault/${seq.store}` && r.operation === 'GET (read)');
    const cpu = run.serverCpuMsPerRequest + (run.dbCpuMsPerRequest ?? 0);
    return {
      store: seq.store,
      cpuMsPerRead: cpu,
      sequentialP50Ms: seq.p50Ms,
      inServerP50MsUnderLoad: run.inServer.p50Ms,
      // The cost of a read is the CPU it takes (the vault's, plus the database server's for
      // PostgreSQL) and its latency with nothing queued ahead of it; latency under a saturating
      // closed-loop load is mostly queueing behind the other connections.
      met: cpu < 1 && seq.p50Ms < 1,
    };
  }),
  rewrap100kUnder60s: rewraps.map((r) => ({
    store: r.store,
    keys: r.done,
    seconds: r.jobSeconds,
    met: r.done >= 100_000 ? r.jobSeconds < 60 : undefined,
  })),
});

const printReport = ({ runs, sequential, rewraps, verdicts, notes }) => {
  console.log(
    `\nThroughput and client-side latency: ${settings.connections} connections, ${settings.duration} s runs, ` +
      `median of ${settings.rounds} rounds\n`,
  );
  console.log(loadTable(runs));
  console.log('\nServer time per request under that load (medians)\n');
  console.log(serverTimeTable(runs));
  console.log('\nOne read at a time, nothing else running: app.inject() GET in the server process\n');
  console.log(injectTable(sequential));
  console.log(`\nRe-wrap after a key rotation\n`);
  console.log(rewrapTable(rewraps));
  console.log('\nTargets');
  for (const v of verdicts.readServerTimeUnder1ms) {
    console.log(
      `  read < 1 ms server time, ${v.store}: ${v.met ? 'met' : 'NOT met'} ` +
        `(CPU ${v.cpuMsPerRead.toFixed(3)} ms/read, one-at-a-time p50 ${v.sequentialP50Ms.toFixed(3)} ms)`,
    );
  }
  for (const v of verdicts.rewrap100kUnder60s) {
    const verdict = v.met === undefined ? `n/a (only ${v.keys} keys)` : v.met ? 'met' : 'NOT met';
    console.log(`  re-wrap of 100k keys < 60 s, ${v.store}: ${verdict} (${v.seconds.toFixed(1)} s)`);
  }
  for (const note of notes) console.log(`  note: ${note}`);
};

const main = async () => {
  const started = Date.now();
  const info = machine();
  log(
    `${info.cpus} CPU(s) (${info.cpuModel}), node ${info.node}; ${settings.rounds} rounds of ${settings.duration} s, ` +
      `${settings.connections} connections; ${settings.rewrapCount} keys to re-wrap`,
  );
  const notes = [];
  const before = machineCpuSeconds();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  info.busyBeforeStart = busyShare(before, machineCpuSeconds());
  if (info.busyBeforeStart > 0.25) {
    const warning = `the machine was ${(info.busyBeforeStart * 100).toFixed(0)} % busy before the bench started (other work on it): expect low and noisy figures`;
    notes.push(warning);
    log(`warning: ${warning}`);
  }

  let pgSource;
  let dbCpu;
  if (settings.postgres) {
    postgres = await openPostgres(log);
    if (postgres.skipped) {
      notes.push(postgres.skipped);
      log(postgres.skipped);
      postgres = undefined;
    } else {
      pgSource = postgres.source;
      log(`PostgreSQL: ${pgSource}`);
      const pid = postgres.postmasterPid?.();
      if (pid) dbCpu = () => postgresCpuSeconds(pid);
      else notes.push('PostgreSQL CPU is not measured on a server this run did not start');
    }
  } else {
    notes.push('PostgreSQL skipped: BENCH_POSTGRES=0');
  }

  const targets = [{ label: 'node:http', server: await startServer('ceiling'), vault: false }];
  const startVault = async (store, env, cpu) => {
    const server = await startServer('vault', env);
    targets.push({ label: `vault/${store}`, store, server, vault: true, dbCpu: cpu });
    log(`vault on ${store}: seeding ${settings.readTargets} credentials to read`);
    await server.call('seed', { count: settings.readTargets, prefix: 'read-' });
  };
  await startVault('sqlite', { BENCH_DATA_DIR: tempDir() });
  if (postgres) {
    const url = await postgres.createDatabase();
    await startVault('postgres', { BENCH_DATA_DIR: tempDir(), BENCH_CHILD_DATABASE_URL: url }, dbCpu);
  }

  const runs = await benchLoad(targets);
  const sequential = [];
  for (const target of targets.filter((t) => t.vault)) {
    log(`${target.label}: ${settings.sequentialReads} reads one at a time`);
    const result = await target.server.call('injectReads', {
      n: settings.sequentialReads,
      warmup: 200,
      targets: settings.readTargets,
      prefix: 'read-',
    });
    sequential.push({ store: target.store, ...result });
  }
  for (const target of targets) await target.server.stop();

  const rewraps = [await benchRewrap('sqlite', { BENCH_DATA_DIR: tempDir() })];
  if (postgres) {
    const env = { BENCH_DATA_DIR: tempDir(), BENCH_CHILD_DATABASE_URL: await postgres.createDatabase() };
    rewraps.push(await benchRewrap('postgres', env, dbCpu));
  }

  const verdicts = verdictsFor(runs, sequential, rewraps);
  printReport({ runs, sequential, rewraps, verdicts, notes });

  const results = {
    finishedAt: new Date().toISOString(),
    totalSeconds: (Date.now() - started) / 1000,
    machine: { ...info, loadAverageAtEnd: os.loadavg() },
    settings,
    postgres: pgSource ?? null,
    notes,
    runs,
    sequentialReads: sequential,
    rewrap: rewraps,
    verdicts,
  };
  const out = join(here, 'results', 'latest.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  log(`results written to ${out} (${results.totalSeconds.toFixed(0)} s in all)`);
};

try {
  await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await cleanup();
}
