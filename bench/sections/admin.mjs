// @ts-check
// Section `admin`: credential create and read throughput through the admin API on every store, against
// the bare node:http ceiling, and the server time of a read (one at a time, and under load).

import { runLoad } from '../load.mjs';
import { measureOnce, summarize } from '../measure.mjs';
import { injectTable, loadTable, serverTimeTable } from '../report.mjs';
import { log, settings } from '../settings.mjs';
import { judge } from '../verdicts.mjs';

/** @typedef {import('../measure.mjs').Target} Target */

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

/**
 * Every target gets every workload once per round, the ceiling first, so a vault run and the ceiling
 * run it is compared with are at most 20 seconds apart; the ratio kept is the median of the per-round ratios.
 */
/** @param {Target[]} targets */
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
      if (settings.warmup === 0) continue;
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
        const load = () =>
          runLoad({
            url: target.server.url,
            connections: settings.connections,
            duration: settings.duration,
            setupRequest: generators.get(key),
          });
        samples.get(key).push(await measureOnce(target, workload.route, load, { label: workload.operation }));
      }
    }
  }
  const ceiling = targets.find((t) => !t.vault);
  if (!ceiling) throw new Error('the admin runs need the node:http ceiling');
  return targets.flatMap((target) =>
    workloads.map((workload) => {
      const own = samples.get(`${target.label}|${workload.operation}`);
      const base = samples.get(`${ceiling.label}|${workload.operation}`);
      const ratios = target.vault ? own.map((s, i) => s.rps / base[i].rps) : undefined;
      return summarize(target.label, workload.operation, own, ratios);
    }),
  );
};

/**
 * @param {{ targets: Target[] }} context  the ceiling and the vaults in their default configuration
 */
const run = async ({ targets }) => {
  const runs = await benchLoad(targets);
  const sequential = [];
  for (const target of targets.filter((t) => t.vault)) {
    log(`${target.label}: ${settings.sequentialReads} reads one at a time`);
    const result = await target.server.call('injectReads', {
      n: settings.sequentialReads,
      warmup: Math.min(200, settings.sequentialReads),
      targets: settings.readTargets,
      prefix: 'read-',
    });
    sequential.push({ store: target.store, ...result });
  }
  return { runs, sequential };
};

/** @typedef {Awaited<ReturnType<typeof run>>} AdminResult */

/** @param {AdminResult} result */
const verdicts = ({ runs, sequential }) =>
  sequential.map((seq) => {
    const run = runs.find((r) => r.server === `vault/${seq.store}` && r.operation === 'GET (read)');
    if (!run) throw new Error(`no read runs for vault/${seq.store}`);
    const cpu = run.serverCpuMsPerRequest + (run.dbCpuMsPerRequest ?? 0);
    // The cost of a read is the CPU it takes (the vault's, plus the database server's for
    // PostgreSQL) and its latency with nothing queued ahead of it; latency under a saturating
    // closed-loop load is mostly queueing behind the other connections.
    return judge('read-server-time', {
      subject: seq.store,
      value: Math.max(cpu, seq.p50Ms),
      detail: `CPU ${cpu.toFixed(3)} ms/read, one-at-a-time p50 ${seq.p50Ms.toFixed(3)} ms, in-server p50 under load ${run.inServer?.p50Ms?.toFixed(3)} ms`,
    });
  });

/**
 * @param {AdminResult} result
 * @returns {[string, string][]}
 */
const report = ({ runs, sequential }) => [
  [
    `Admin API throughput and client-side latency: ${settings.connections} connections, ${settings.duration} s runs, ` +
      `median of ${settings.rounds} rounds`,
    loadTable(runs),
  ],
  ['Server time per request under that load (medians)', serverTimeTable(runs)],
  [
    'One read at a time, nothing else running: app.inject() GET in the server process',
    injectTable(sequential),
  ],
];

/** @type {import('./section.mjs').Section<{ targets: Target[] }, AdminResult>} */
export const adminSection = { name: 'admin', run, verdicts, report };
