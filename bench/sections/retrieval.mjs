// @ts-check
// Section `retrieval`: an agent's GET with its API key, on a reveal grant, audited durably, against the
// node:http ceiling and Fastify alone with the same route (the framework's floor): the maximum rate,
// latency at half of it, and every run's audit events counted. The vaults run their default
// configuration; the SQLite vault also runs with logging off, in the same rounds, for issue 12's target.

import { execFile } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile, runLoad, runPaced } from '../load.mjs';
import { measureOnce, median, summarize } from '../measure.mjs';
import { auditCheckTable, halfRateTable, injectTable, retrievalTable } from '../report.mjs';
import { log, settings, tempDir } from '../settings.mjs';
import { judge } from '../verdicts.mjs';

/** @typedef {import('../measure.mjs').Target} Target */

const benchDir = dirname(dirname(fileURLToPath(import.meta.url)));

const retrievalRoute = { method: 'GET', path: '/v1/agents/:agentId/credentials/:service' };

/** What an agent sends, for a credential picked at random among those it was granted. */
const retrievalRequests = (access) => (req) => ({
  ...req,
  method: 'GET',
  path: `/v1/agents/${access.agentId}/credentials/read-${Math.floor(Math.random() * settings.retrievalTargets)}`,
  headers: { authorization: `Bearer ${access.apiKey}` },
});

/**
 * The disk's floor for a durable commit: 4 KiB appended and `fdatasync`ed to a file in the temp dir
 * the stores live in, 300 times, one after the other. Any answer that waits for a durable commit waits
 * at least this long.
 */
const diskSyncFloor = () => {
  const dir = tempDir();
  const fd = openSync(join(dir, 'sync-probe'), 'w');
  const block = Buffer.alloc(4096, 1);
  const times = [];
  try {
    for (let i = 0; i < 300; i++) {
      const started = performance.now();
      writeSync(fd, block);
      fdatasyncSync(fd);
      times.push(performance.now() - started);
    }
  } finally {
    closeSync(fd);
  }
  times.sort((a, b) => a - b);
  return { n: times.length, p50Ms: percentile(times, 50), p99Ms: percentile(times, 99) };
};

/** `bench/fsync-probe.mjs` for `seconds`, in a process of its own: its percentiles. */
const runFsyncProbe = (seconds) =>
  new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [join(benchDir, 'fsync-probe.mjs'), tempDir(), String(seconds)],
      (error, stdout) => (error ? reject(error) : resolve(JSON.parse(stdout))),
    );
  });

/**
 * Per round: the ceiling at full speed, then Fastify alone (`floor`: the framework's cost, see
 * server-child.mjs); each vault at full speed (closed loop, `BENCH_CONNECTIONS`
 * connections), then at half the rate it just reached, paced (open loop, see `runPaced`) and with
 * autocannon's `overallRate`; last, the ceiling paced at the SQLite vault's half rate, as the latency
 * floor of this machine and load generator at that rate. Every vault run is checked against its audit
 * events.
 */
/**
 * @param {Target[]} targets  the ceiling, then the vaults in their default configuration
 * @param {Target} floor  Fastify alone
 * @param {Target[]} logOff  the same vaults with logging off: full-speed runs only, beside the default
 */
const benchRetrieval = async (targets, floor, logOff) => {
  const ceiling = targets.find((t) => !t.vault);
  if (!ceiling) throw new Error('the retrieval runs need the node:http ceiling');
  const vaults = targets.filter((t) => t.vault);
  const closedLoop = [ceiling, floor, ...vaults, ...logOff];
  // The ceiling gets the same requests, with the first vault's agent id and key (same lengths).
  const requestsFor = (target) => retrievalRequests((target.vault ? target : vaults[0]).retrievalAccess);
  // autocannon is closed-loop over a fixed time: when the time is up it drops the requests still in
  // flight (at most one per connection). Counting the requests it builds (one `setupRequest` call per
  // request sent) says how many were sent, so every sent request can be matched with its audit event.
  const counted = (target, options) => async () => {
    const next = requestsFor(target);
    let sent = 0;
    const result = await runLoad({
      url: target.server.url,
      connections: settings.connections,
      duration: settings.duration,
      ...options,
      setupRequest: (req) => {
        sent += 1;
        return next(req);
      },
    });
    return { ...result, sent };
  };
  const full = (target, duration) => counted(target, duration ? { duration } : {});
  const wide = (target) => counted(target, { connections: settings.wideConnections });
  const quota = (target, rate) => counted(target, { overallRate: rate });
  const paced = (target, rate) => () =>
    runPaced({
      url: target.server.url,
      rate,
      duration: settings.duration,
      connections: settings.connections,
      next: requestsFor(target),
    });
  const diskSync = diskSyncFloor();
  log(
    `disk: fdatasync of a 4 KiB append p50 ${diskSync.p50Ms.toFixed(2)} ms, p99 ${diskSync.p99Ms.toFixed(2)} ms`,
  );
  for (const target of settings.warmup > 0 ? closedLoop : []) {
    log(`warm-up: ${target.label} retrieval (${settings.warmup} s)`);
    await full(target, settings.warmup)();
  }
  // The profilers asked for (BENCH_CPU_PROF, BENCH_HEAP_PROF), over the vault servers' retrieval rounds.
  const profilers = [
    {
      dir: settings.profileDir,
      start: 'profileStart',
      stop: 'profileStop',
      extension: 'cpuprofile',
      what: 'CPU profile',
    },
    {
      dir: settings.heapProfileDir,
      start: 'heapProfileStart',
      stop: 'heapProfileStop',
      extension: 'heapprofile',
      what: 'heap profile (promoted allocations)',
    },
  ].filter((p) => p.dir);
  for (const { start } of profilers) for (const target of vaults) await target.server.call(start);
  const samples = new Map();
  const add = (key, sample) => {
    if (!samples.has(key)) samples.set(key, []);
    samples.get(key).push(sample);
  };
  for (let round = 1; round <= settings.rounds; round++) {
    const step = (what) => log(`round ${round}/${settings.rounds}: ${what}`);
    for (const target of [ceiling, floor]) {
      step(`${target.label} retrieval, full speed`);
      add(`${target.label}|full`, await measureOnce(target, retrievalRoute, full(target)));
    }
    // A vault with logging off runs right beside its default twin, first in every other round, so
    // the machine's drift does not favour either (issue 12's ratio is taken per round).
    const logOffFirst = round % 2 === 0;
    const fullSpeed = async (target, kind, loadOf) => {
      const opts = { audited: true, label: 'retrieval' };
      const twin = logOff.filter((t) => t.store === target.store);
      let own;
      for (const t of logOffFirst ? [...twin, target] : [target, ...twin]) {
        step(
          `${t.label} retrieval, full speed${kind === 'wide' ? `, ${settings.wideConnections} connections` : ''}`,
        );
        const sample = await measureOnce(t, retrievalRoute, loadOf(t), opts);
        add(`${t.label}|${kind}`, sample);
        if (t === target) own = sample;
      }
      return own;
    };
    let firstHalf = 0;
    for (const target of vaults) {
      const opts = { audited: true, label: 'retrieval' };
      const max = await fullSpeed(target, 'full', full);
      const half = max.rps / 2;
      firstHalf ||= half;
      step(`${target.label} retrieval, paced at ${half.toFixed(0)} req/s`);
      add(`${target.label}|paced`, await measureOnce(target, retrievalRoute, paced(target, half), opts));
      if (settings.quotaRuns) {
        step(`${target.label} retrieval, autocannon overallRate ${half.toFixed(0)}`);
        add(`${target.label}|quota`, await measureOnce(target, retrievalRoute, quota(target, half), opts));
      }
    }
    step(`${ceiling.label} retrieval, paced at ${firstHalf.toFixed(0)} req/s`);
    add(`${ceiling.label}|paced`, await measureOnce(ceiling, retrievalRoute, paced(ceiling, firstHalf)));
    if (settings.wideConnections) {
      for (const target of [ceiling, floor]) {
        step(`${target.label} retrieval, full speed, ${settings.wideConnections} connections`);
        add(`${target.label}|wide`, await measureOnce(target, retrievalRoute, wide(target)));
      }
      for (const target of vaults) await fullSpeed(target, 'wide', wide);
    }
  }
  // The disk under a busy machine: the same probe as the floor above, from a process of its own, while
  // the ceiling runs at full speed (both CPUs busy, as during the vaults' runs). Not part of any ratio.
  log(`disk: fdatasync while ${ceiling.label} runs at full speed (${settings.duration} s)`);
  const probe = runFsyncProbe(settings.duration);
  await full(ceiling)();
  const diskSyncBusy = await probe;
  for (const { dir, stop, extension, what } of profilers) {
    for (const target of vaults) {
      const file = join(/** @type {string} */ (dir), `retrieval-${target.store}.${extension}`);
      await target.server.call(stop, { file });
      log(`${what} of ${target.label} during the retrieval runs: ${file}`);
    }
  }
  const sequential = [];
  for (const target of vaults) {
    log(`${target.label}: ${settings.sequentialRetrievals} retrievals one at a time`);
    const result = await target.server.call('injectRetrievals', {
      n: settings.sequentialRetrievals,
      warmup: Math.min(100, settings.sequentialRetrievals),
      targets: settings.retrievalTargets,
      prefix: 'read-',
      ...target.retrievalAccess,
    });
    sequential.push({ store: target.store, ...result });
  }
  // Each vault run against the ceiling run of the same round and connection count.
  const ratiosOf = (own, kind) => {
    const base = samples.get(`${ceiling.label}|${kind}`);
    return own.map((s, i) => s.rps / base[i].rps);
  };
  const result = (target, kind) => {
    const own = samples.get(`${target.label}|${kind}`);
    if (!own) return undefined;
    const closed = kind === 'full' || kind === 'wide';
    const summary = summarize(
      target.label,
      kind,
      own,
      closed && target !== ceiling ? ratiosOf(own, kind) : undefined,
    );
    return {
      ...summary,
      connections: kind === 'wide' ? settings.wideConnections : settings.connections,
      pacing: {
        full: 'closed loop',
        wide: `closed loop, ${settings.wideConnections} connections`,
        paced: 'paced',
        quota: 'autocannon overallRate',
      }[kind],
    };
  };
  // The default configuration against the same vault with logging off, round by round (issue 12).
  const loggingCost = logOff.flatMap((quiet) => {
    const twin = vaults.find((v) => v.store === quiet.store);
    if (!twin) return [];
    return ['full', 'wide'].flatMap((kind) => {
      const own = samples.get(`${twin.label}|${kind}`);
      const base = samples.get(`${quiet.label}|${kind}`);
      if (!own || !base) return [];
      return [
        {
          store: twin.store,
          connections: kind === 'wide' ? settings.wideConnections : settings.connections,
          rps: median(own.map((s) => s.rps)),
          logOffRps: median(base.map((s) => s.rps)),
          ratio: median(own.map((s, i) => s.rps / base[i].rps)),
          perRound: own.map((s, i) => s.rps / base[i].rps),
          // What the machine's noise moves least: the CPU a retrieval costs in each configuration.
          cpuMsPerRequest: median(own.map((s) => s.serverCpuMsPerRequest)),
          logOffCpuMsPerRequest: median(base.map((s) => s.serverCpuMsPerRequest)),
        },
      ];
    });
  });
  return {
    diskSync,
    diskSyncBusy,
    sequential,
    loggingCost,
    full: closedLoop.map((t) => result(t, 'full')).filter((r) => r !== undefined),
    wide: closedLoop.map((t) => result(t, 'wide')).filter((r) => r !== undefined),
    halfRate: [
      ...vaults.flatMap((t) => [result(t, 'paced'), result(t, 'quota')]),
      result(ceiling, 'paced'),
    ].filter((r) => r !== undefined),
  };
};

/**
 * @param {{ targets: Target[], floor: Target, logOff: Target[] }} context
 */
const run = ({ targets, floor, logOff }) => benchRetrieval(targets, floor, logOff);

/** @typedef {Awaited<ReturnType<typeof benchRetrieval>>} RetrievalResult */

/** @param {RetrievalResult} retrieval */
const verdicts = (retrieval) => {
  const closed = [...retrieval.full, ...retrieval.wide];
  const isDefaultVault = (r) => r.server.startsWith('vault/') && !r.server.includes('logging off');
  const vsCeiling = closed.filter(isDefaultVault).map((r) => {
    // What the framework alone reaches in the same rounds: the most any Fastify route could.
    const fastify = closed.find((f) => f.server === 'fastify' && f.connections === r.connections);
    const fastifyShare =
      fastify?.ratioToCeiling === undefined ? 'n/a' : `${(fastify.ratioToCeiling * 100).toFixed(1)} %`;
    return judge('retrieval-vs-ceiling', {
      subject: `${r.server.replace('vault/', '')}, ${r.connections} connections`,
      value: r.ratioToCeiling * 100,
      detail: `${r.rps.toFixed(0)} req/s; Fastify alone ${fastifyShare}`,
      // The issue's target is on SQLite; PostgreSQL is reported against the same bar.
      judged: r.server === 'vault/sqlite',
    });
  });
  const p99 = retrieval.halfRate
    .filter((r) => isDefaultVault(r) && r.pacing === 'paced')
    .map((r) =>
      judge('retrieval-p99-half-rate', {
        subject: r.server.replace('vault/', ''),
        value: r.latencyMs.p99,
        detail: `at ${r.rateAsked.toFixed(0)} req/s`,
      }),
    );
  const audited = [...closed, ...retrieval.halfRate].filter((r) => r.audit);
  const sum = (pick) => audited.reduce((n, r) => n + pick(r), 0);
  const audit = judge('retrieval-audit-complete', {
    subject: `${sum((r) => r.rounds)} runs`,
    value: audited.reduce((n, r) => n + r.perRound.filter((p) => p.audit && !p.audit.match).length, 0),
    detail: `${sum((r) => r.audit.retrieveAllow)} allow events for ${sum((r) => r.audit.sent)} requests sent, ${sum((r) => r.audit.client200)} 200s received`,
  });
  const logging = retrieval.loggingCost.map((c) =>
    judge('default-config-vs-logging-off', {
      subject: `${c.store}, ${c.connections} connections`,
      value: c.ratio * 100,
      detail:
        `${c.rps.toFixed(0)} against ${c.logOffRps.toFixed(0)} req/s, medians; per round ${c.perRound.map((r) => `${(r * 100).toFixed(1)} %`).join(', ')}; ` +
        `CPU ${c.cpuMsPerRequest.toFixed(3)} against ${c.logOffCpuMsPerRequest.toFixed(3)} ms a retrieval`,
    }),
  );
  return [...vsCeiling, ...p99, audit, ...logging];
};

/**
 * @param {RetrievalResult} retrieval
 * @returns {[string, string][]}
 */
const report = (retrieval) => {
  const { diskSync, diskSyncBusy: busy } = retrieval;
  const rounds = `${settings.duration} s runs, median of ${settings.rounds} rounds`;
  /** @type {[string, string][]} */
  const sections = [
    [
      `Agent retrieval at full speed: ${settings.connections} connections, ${rounds}`,
      retrievalTable(retrieval.full),
    ],
  ];
  if (retrieval.wide.length > 0) {
    sections.push([
      `Agent retrieval at full speed: ${settings.wideConnections} connections, ${rounds}`,
      retrievalTable(retrieval.wide),
    ]);
  }
  sections.push(
    [
      'Disk floor of a durable commit',
      `fdatasync of a 4 KiB append, ${diskSync.n} times: p50 ${diskSync.p50Ms.toFixed(2)} ms, p99 ${diskSync.p99Ms.toFixed(2)} ms\n` +
        `The same, one a millisecond from a process of its own while node:http runs at full speed (${busy.n} times): ` +
        `p50 ${busy.p50Ms.toFixed(2)} ms, p99 ${busy.p99Ms.toFixed(2)} ms, p99.9 ${busy.p999Ms.toFixed(2)} ms`,
    ],
    [
      'Agent retrieval at half the full-speed rate of each round (medians)',
      halfRateTable(retrieval.halfRate),
    ],
    [
      'One retrieval at a time, nothing else running: app.inject() GET in the server process',
      injectTable(retrieval.sequential),
    ],
    [
      'Audit events of the retrieval runs (sums over the rounds)',
      auditCheckTable([...retrieval.full, ...retrieval.wide, ...retrieval.halfRate].filter((r) => r.audit)),
    ],
  );
  return sections;
};

/** @type {import('./section.mjs').Section<{ targets: Target[], floor: Target, logOff: Target[] }, RetrievalResult>} */
export const retrievalSection = { name: 'retrieval', run, verdicts, report };
