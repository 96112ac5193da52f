// Measuring one load run against one server, and summarizing the rounds of one server and operation:
// what every section's load runs share.

import { setTimeout as sleep } from 'node:timers/promises';
import { machineCpuSeconds } from './cpu.mjs';
import { durationBetween, scrapeCounter, scrapeDuration } from './load.mjs';
import { log } from './settings.mjs';

/**
 * A server under load, as the sections see it.
 * @typedef {object} Target
 * @property {string} label  how tables name it (`node:http`, `fastify`, `vault/sqlite`, …)
 * @property {boolean} vault  the vault, not a ceiling or floor
 * @property {'sqlite' | 'postgres'} [store]
 * @property {'default' | 'logging off'} [config]  the vault's configuration (see server-child.mjs)
 * @property {{ url: string, token?: string, call: (cmd: string, args?: object) => Promise<any>, stop: () => Promise<void> }} server
 * @property {() => number | undefined} [dbCpu]  the database server's CPU seconds so far
 * @property {{ agentId: string, apiKey: string }} [retrievalAccess]
 */

/**
 * One measured run, with the server's CPU time, event-loop use and (vault only) its own histogram.
 * `load()` runs the load and returns its client-side figures (`runLoad` or `runPaced`).
 * `audited`: afterwards, once the server is idle, count the `credential.retrieve` events the run left
 * in the audit log and the responses the server counted, and compare them with what the client got.
 */
export const measureOnce = async (target, route, load, { audited = false, label = '' } = {}) => {
  const { server } = target;
  const vaultRoute = target.vault ? route : undefined;
  const histogramBefore = vaultRoute
    ? await scrapeDuration(server.url, vaultRoute.method, vaultRoute.path)
    : undefined;
  const auditBefore = audited ? await auditWindowStart(target, route) : undefined;
  const dbBefore = target.dbCpu?.();
  await server.call('mark');
  const machineBefore = machineCpuSeconds();
  const ownBefore = process.cpuUsage();
  const result = await load();
  const ownCpu = process.cpuUsage(ownBefore);
  const machineAfter = machineCpuSeconds();
  const usage = await server.call('measure');
  const dbAfter = target.dbCpu?.();
  const histogramAfter = vaultRoute
    ? await scrapeDuration(server.url, vaultRoute.method, vaultRoute.path)
    : undefined;
  const audit = audited ? await auditWindowEnd(target, route, auditBefore, result) : undefined;
  if (result.non2xx + result.errors > 0) {
    log(`warning: ${target.label} ${label}: ${result.non2xx} non-2xx, ${result.errors} errors`);
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
    mainThreadCpuMsPerRequest:
      usage.mainThreadCpuMs === undefined ? undefined : perRequest(usage.mainThreadCpuMs),
    statementsPerRequest: target.vault ? usage.statements / Math.max(result.requests, 1) : undefined,
    eventLoopUtilization: usage.eventLoopUtilization,
    eventLoopDelayMs: usage.eventLoopDelayMs,
    dbCpuMsPerRequest: dbSeconds === undefined ? undefined : perRequest(dbSeconds * 1000),
    loadGeneratorCpuShare:
      machineSeconds > 0 ? (ownCpu.user + ownCpu.system) / 1e6 / machineSeconds : undefined,
    otherCpuShare,
    inServer: vaultRoute ? durationBetween(histogramBefore, histogramAfter) : undefined,
    audit,
  };
};

/** Responses the server itself counted for a route (`tokenvault_http_requests_total`), 200 and all. */
const serverResponses = async (target, route) => {
  const match = { method: route.method, route: route.path };
  return {
    ok: await scrapeCounter(target.server.url, 'tokenvault_http_requests_total', { ...match, status: '200' }),
    all: await scrapeCounter(target.server.url, 'tokenvault_http_requests_total', match),
  };
};

const auditWindowStart = async (target, route) => ({
  seq: await target.server.call('auditHead'),
  responses: await serverResponses(target, route),
});

/**
 * Waits until the audit log stops growing (the load generator stops mid-request: the server still
 * answers, and records, the requests that were in flight), then counts.
 */
const auditWindowEnd = async (target, route, before, result) => {
  let head = await target.server.call('auditHead');
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const again = await target.server.call('auditHead');
    if (again === head) break;
    head = again;
  }
  const counted = await target.server.call('auditCount', { afterSeq: before.seq });
  const after = await serverResponses(target, route);
  const client200 = result.statuses[200] ?? 0;
  const received = Object.values(result.statuses).reduce((n, v) => n + v, 0);
  return {
    sent: result.sent,
    client200,
    clientOther: received - client200,
    // Sent, but dropped unanswered by the load generator when its time was up.
    abandoned: result.sent - received,
    // The server's own count (tokenvault_http_requests_total); it may leave out answers to requests
    // whose client had gone, so it is kept for the record only.
    server200: after.ok - before.responses.ok,
    serverAll: after.all - before.responses.all,
    retrieveAllow: counted.allow,
    retrieveDeny: counted.deny,
    otherEvents: counted.events - counted.allow - counted.deny,
    // One event per request sent; every 200 received has its allow event, every refusal its deny.
    match:
      counted.allow + counted.deny === result.sent &&
      counted.allow >= client200 &&
      counted.deny >= received - client200 &&
      counted.events === counted.allow + counted.deny,
  };
};

export const median = (values) => {
  const sorted = values.filter((v) => v !== undefined && !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** Medians over the rounds of every figure; counts of failures are summed. */
export const summarize = (label, operation, samples, ratios) => {
  const m = (pick) => median(samples.map(pick));
  return {
    server: label,
    operation,
    rounds: samples.length,
    rps: m((s) => s.rps),
    latencyMs: { p50: m((s) => s.latencyMs.p50), p99: m((s) => s.latencyMs.p99) },
    ratioToCeiling: ratios ? median(ratios) : undefined,
    serverCpuMsPerRequest: m((s) => s.serverCpuMsPerRequest),
    mainThreadCpuMsPerRequest: m((s) => s.mainThreadCpuMsPerRequest),
    statementsPerRequest: m((s) => s.statementsPerRequest),
    dbCpuMsPerRequest: m((s) => s.dbCpuMsPerRequest),
    eventLoopUtilization: m((s) => s.eventLoopUtilization),
    eventLoopDelayMs: samples[0].eventLoopDelayMs
      ? { p99: m((s) => s.eventLoopDelayMs.p99), max: m((s) => s.eventLoopDelayMs.max) }
      : undefined,
    loadGeneratorCpuShare: m((s) => s.loadGeneratorCpuShare),
    otherCpuShare: m((s) => s.otherCpuShare),
    inServer: samples[0].inServer
      ? Object.fromEntries(Object.keys(samples[0].inServer).map((k) => [k, m((s) => s.inServer[k])]))
      : undefined,
    requests: samples.reduce((n, s) => n + s.requests, 0),
    non2xx: samples.reduce((n, s) => n + s.non2xx, 0),
    errors: samples.reduce((n, s) => n + s.errors, 0),
    rateAsked: m((s) => s.rateAsked),
    fromDueMs: samples[0].fromDueMs
      ? { p50: m((s) => s.fromDueMs.p50), p99: m((s) => s.fromDueMs.p99) }
      : undefined,
    sendDelayMs: samples[0].sendDelayMs
      ? { p50: m((s) => s.sendDelayMs.p50), p99: m((s) => s.sendDelayMs.p99) }
      : undefined,
    audit: samples[0].audit
      ? {
          ...Object.fromEntries(
            [
              'sent',
              'client200',
              'clientOther',
              'abandoned',
              'server200',
              'serverAll',
              'retrieveAllow',
              'retrieveDeny',
              'otherEvents',
            ].map((k) => [k, samples.reduce((n, s) => n + s.audit[k], 0)]),
          ),
          match: samples.every((s) => s.audit.match),
        }
      : undefined,
    perRound: samples.map((s, i) => ({
      rps: s.rps,
      rateAsked: s.rateAsked,
      audit: s.audit,
      p50: s.latencyMs.p50,
      p99: s.latencyMs.p99,
      serverCpuMsPerRequest: s.serverCpuMsPerRequest,
      dbCpuMsPerRequest: s.dbCpuMsPerRequest,
      mainThreadCpuMsPerRequest: s.mainThreadCpuMsPerRequest,
      eventLoopDelayMs: s.eventLoopDelayMs,
      inServerP99Ms: s.inServer?.p99Ms,
      ratioToCeiling: ratios?.[i],
      otherCpuShare: s.otherCpuShare,
    })),
  };
};
