// @ts-check
// Section `mcp-proxy`: an agent's `tools/call` through the vault's MCP proxy (`/mcp/{proxy}`, a
// `tv_proxy_` key, one decision and one durable `mcp_proxy.call` event per call) against the same call
// straight to the upstream, in the same run: requests per second and p50/p99 at full speed, the
// median added one call at a time, in the session revisions (a kept `Mcp-Session-Id`, one per
// connection) and in the stateless 2026-07-28 one; the upstream's `initialize` requests counted
// against the sessions opened; then 10,000 sessions opened and closed through the proxy with the
// vault's memory after GC sampled at the start, the middle and the end. The upstream is an SDK server
// in a process of its own (mcp-upstream.mjs); the vault runs its default configuration on SQLite.

import { openSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../children.mjs';
import { runLoad } from '../load.mjs';
import { churnSessions } from '../mcp-churn.mjs';
import { callEcho, echoCall, mcpHeaders, openSession, statelessRevision } from '../mcp-sessions.mjs';
import { median } from '../measure.mjs';
import { log, settings, tempDir } from '../settings.mjs';
import { judge } from '../verdicts.mjs';

const proxyName = 'bench-mcp';

/** @param {number | undefined} value @param {number} [digits] */
const fmt = (value, digits = 2) =>
  value === undefined || Number.isNaN(value) ? '–' : Number(value).toFixed(digits);

/**
 * @typedef {{ label: 'direct' | 'proxy' | 'stateless', url: string,
 *   sessions: Record<string, string>[] }} McpTarget  each connection sends with one set of headers
 *   (a session of its own; the stateless path has one set, no session)
 */

const benchMcpProxy = async () => {
  const upstream = await startServer('mcp-upstream');
  const dataDir = tempDir();
  const vault = await startServer(
    'vault',
    { BENCH_DATA_DIR: dataDir, BENCH_VAULT_OUTBOUND_ALLOW: '127.0.0.1' },
    { stdout: openSync(join(dataDir, 'vault.log'), 'a') },
  );
  try {
    /** @type {{ key: string }} */
    const { key } = await vault.call('setupMcpProxy', {
      upstreamUrl: upstream.url,
      proxy: proxyName,
      agentName: 'bench-mcp-agent',
    });
    const proxyUrl = `${vault.url}/mcp/${proxyName}`;
    /** @returns {Promise<{ initialize: number, deleted: number, idleDropped: number, calls: number, held: number, requests: number, connections: number }>} */
    const upstreamCounts = () => upstream.call('mcpCounts');

    // One session per connection on each session path; the first proxied one lists the tools, which
    // pins their definitions (a call to a tool never listed is withheld).
    const initializeBefore = (await upstreamCounts()).initialize;
    /** @param {string} url @param {string | undefined} withKey */
    const sessionsFor = async (url, withKey) => {
      const list = [];
      for (let i = 0; i < settings.connections; i++) {
        const { sessionId, version } = await openSession(url, { key: withKey, listTools: i === 0 });
        list.push(mcpHeaders({ key: withKey, sessionId, version }));
      }
      return list;
    };
    const proxySessions = await sessionsFor(proxyUrl, key);
    const directSessions = await sessionsFor(upstream.url, undefined);
    const statelessHeaders = mcpHeaders({ key, version: statelessRevision });
    /** @type {McpTarget} */
    const proxied = { label: 'proxy', url: proxyUrl, sessions: proxySessions };
    /** @type {McpTarget[]} */
    const paths = [
      { label: 'direct', url: upstream.url, sessions: directSessions },
      proxied,
      { label: 'stateless', url: proxyUrl, sessions: [statelessHeaders] },
    ];
    let nextId = 100;
    for (const path of paths)
      await callEcho(path.url, /** @type {Record<string, string>} */ (path.sessions[0]), nextId++);

    /**
     * Waits until the calls still in flight when a run ends (autocannon stops waiting for them) have
     * reached the upstream and, through the vault, their audit event: so each run's counts are its own.
     */
    const settle = async () => {
      let last = '';
      for (;;) {
        const now = JSON.stringify([(await upstreamCounts()).calls, await vault.call('auditHead')]);
        if (now === last) return;
        last = now;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    /** @param {McpTarget} path @param {number} connections @param {number} duration */
    const load = async (path, connections, duration) => {
      let sent = 0;
      let assigned = 0;
      await settle();
      const auditBefore = await vault.call('auditHead');
      const countsBefore = await upstreamCounts();
      const callsBefore = countsBefore.calls;
      const proxied = path.label !== 'direct';
      await Promise.all([upstream.call('mark'), proxied ? vault.call('mark') : undefined]);
      const result = await runLoad({
        url: path.url,
        connections,
        duration,
        method: 'POST',
        setupRequest: (/** @type {any} */ req, /** @type {any} */ context) => {
          sent += 1;
          context.headers ??= path.sessions[assigned++ % path.sessions.length];
          const id = nextId++;
          return {
            ...req,
            method: 'POST',
            headers: context.headers,
            body: echoCall(id, path.label === 'stateless'),
          };
        },
      });
      // CPU per answered call, and how busy each event loop was: waiting, or working.
      const [upstreamUse, vaultUse] = await Promise.all([
        upstream.call('measure'),
        proxied ? vault.call('measure') : undefined,
      ]);
      const use = (/** @type {any} */ m) =>
        m && { cpuMsPerCall: m.cpuMs / Math.max(1, result.ok), eventLoopUtilization: m.eventLoopUtilization };
      await settle();
      const counted = await upstreamCounts();
      const upstreamCalls = counted.calls - callsBefore;
      // What reached the upstream per call: HTTP requests, and new connections (keep-alive or not).
      const perCall = {
        requests: (counted.requests - countsBefore.requests) / Math.max(1, upstreamCalls),
        connections: (counted.connections - countsBefore.connections) / Math.max(1, upstreamCalls),
      };
      const audit =
        path.label === 'direct'
          ? undefined
          : await vault.call('auditCount', { afterSeq: auditBefore, action: 'mcp_proxy.call' });
      return {
        ...result,
        sent,
        upstreamCalls,
        audit,
        upstreamCpu: use(upstreamUse),
        perCall,
        vaultCpu: use(vaultUse),
      };
    };
    if (settings.warmup > 0) {
      for (const path of paths) {
        log(`mcp warm-up: ${path.label} (${settings.warmup} s)`);
        await load(path, settings.connections, settings.warmup);
      }
    }
    const timingStatements = process.env.BENCH_STATEMENT_TIMES === '1';
    if (timingStatements) await vault.call('statementTimes', {});
    /** @type {Record<string, any[]>} */
    const runs = {};
    for (let round = 1; round <= settings.rounds; round++) {
      // Rotate which goes first, so the machine's drift does not favour any.
      const order = paths.map((_, i) => paths[(i + round - 1) % paths.length]);
      for (const [kind, connections] of /** @type {const} */ ([
        ['full', settings.connections],
        ['one', 1],
      ])) {
        for (const path of order) {
          if (!path) continue;
          log(`mcp round ${round}/${settings.rounds}: ${path.label}, ${connections} connection(s)`);
          (runs[`${path.label}|${kind}`] ??= []).push(await load(path, connections, settings.duration));
        }
      }
    }
    /** @type {{ sql: string, n: number, ms: number, maxMs: number }[] | undefined} */
    const statementTimes = timingStatements ? await vault.call('statementTimes', { top: 8 }) : undefined;
    // Opening `connections` sessions through the proxy, the stateless key's one shared session, and
    // every call since: one upstream `initialize` for each session, none per call.
    const initializes = (await upstreamCounts()).initialize - initializeBefore - directSessions.length;
    const sessionsOpened = proxySessions.length + 1;

    let profile;
    if (settings.profileDir) {
      const file = join(settings.profileDir, 'mcp-proxy.cpuprofile');
      log(`mcp: a profiled proxied run (${settings.duration} s) to ${file}`);
      await vault.call('profileStart');
      const profiled = await load(proxied, settings.connections, settings.duration);
      profile = { file: await vault.call('profileStop', { file }), rps: profiled.rps };
    }

    // The wait every tools/call has before its answer: one durable audit event, on its own.
    /** @type {number[]} */
    const appends = await vault.call('durableAppends', { n: settings.smoke ? 10 : 300 });
    const durable = {
      n: appends.length,
      p50Ms: appends[Math.floor(appends.length / 2)],
      p99Ms: appends[Math.min(appends.length - 1, Math.ceil(appends.length * 0.99) - 1)],
    };

    const churn = await churnSessions({
      vault,
      upstreamCounts,
      url: proxyUrl,
      key,
      total: settings.mcpSessions,
    });

    /** @param {string} runKey */
    const summary = (runKey) => {
      const list = runs[runKey] ?? [];
      return {
        runs: list.length,
        rps: median(list.map((r) => r.rps)),
        p50Ms: median(list.map((r) => r.latencyMs.p50)),
        p99Ms: median(list.map((r) => r.latencyMs.p99)),
        non2xx: list.reduce((s, r) => s + r.non2xx + r.errors, 0),
        vaultCpuMsPerCall: median(list.map((r) => r.vaultCpu?.cpuMsPerCall ?? NaN)),
        vaultEventLoopUse: median(list.map((r) => r.vaultCpu?.eventLoopUtilization ?? NaN)),
        upstreamCpuMsPerCall: median(list.map((r) => r.upstreamCpu?.cpuMsPerCall ?? NaN)),
      };
    };
    // Every answered call reached the upstream, and (through the vault) was one allowed, durable event.
    const proxiedRuns = Object.entries(runs)
      .filter(([k]) => !k.startsWith('direct|'))
      .flatMap(([, v]) => v);
    const callGaps = Object.values(runs)
      .flat()
      .filter((r) => r.upstreamCalls < r.ok || r.upstreamCalls > r.sent).length;
    const auditGaps = proxiedRuns.filter(
      (r) =>
        !r.audit || r.audit.deny > 0 || r.audit.allow < r.ok || r.audit.allow + r.audit.cancelled > r.sent,
    ).length;
    /** @param {string} over @param {string} under @param {(r: any) => number} f */
    const paired = (over, under, f) =>
      median(
        (runs[over] ?? []).map(
          (r, i) => f(r) - f((runs[under] ?? [])[i] ?? { rps: NaN, latencyMs: { p50: NaN } }),
        ),
      );
    return {
      direct: summary('direct|full'),
      proxy: summary('proxy|full'),
      stateless: summary('stateless|full'),
      directOne: summary('direct|one'),
      proxyOne: summary('proxy|one'),
      statelessOne: summary('stateless|one'),
      // Ratios per round (same round, adjacent runs), then their median.
      ratioPercent: median(
        (runs['proxy|full'] ?? []).map((r, i) => (100 * r.rps) / (runs['direct|full']?.[i]?.rps ?? NaN)),
      ),
      statelessRatioPercent: median(
        (runs['stateless|full'] ?? []).map((r, i) => (100 * r.rps) / (runs['direct|full']?.[i]?.rps ?? NaN)),
      ),
      addedP50Ms: paired('proxy|one', 'direct|one', (r) => r.latencyMs.p50),
      statelessAddedP50Ms: paired('stateless|one', 'direct|one', (r) => r.latencyMs.p50),
      initializes,
      sessionsOpened,
      callGaps,
      auditGaps,
      durable,
      profile,
      statementTimes,
      churn,
      runs,
    };
  } finally {
    await vault.stop();
    await upstream.stop();
  }
};

/** @typedef {Awaited<ReturnType<typeof benchMcpProxy>>} McpProxyResult */

/** @param {McpProxyResult} r */
const verdicts = (r) => {
  const gaps = [
    r.auditGaps ? `${r.auditGaps} runs with audit gaps` : '',
    r.callGaps ? `${r.callGaps} runs where upstream calls and answers differ` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return [
    judge('mcp-proxy-vs-direct', {
      subject: `sessions, ${settings.connections} connections`,
      value: r.ratioPercent,
      detail: `${fmt(r.proxy.rps, 0)} vs ${fmt(r.direct.rps, 0)} calls/s (medians of ${r.proxy.runs} rounds)${gaps ? `; ${gaps}` : ''}`,
    }),
    judge('mcp-proxy-vs-direct', {
      subject: `2026-07-28 stateless, ${settings.connections} connections`,
      value: r.statelessRatioPercent,
      judged: false,
      detail: `${fmt(r.stateless.rps, 0)} vs ${fmt(r.direct.rps, 0)} calls/s`,
    }),
    judge('mcp-proxy-added-p50', {
      subject: 'sessions, 1 connection',
      value: r.addedP50Ms,
      detail: `p50 ${fmt(r.proxyOne.p50Ms, 3)} vs ${fmt(r.directOne.p50Ms, 3)} ms; one durable audit event alone: p50 ${fmt(r.durable.p50Ms, 3)} ms`,
    }),
    judge('mcp-proxy-added-p50', {
      subject: '2026-07-28 stateless, 1 connection',
      value: r.statelessAddedP50Ms,
      judged: false,
      detail: `p50 ${fmt(r.statelessOne.p50Ms, 3)} vs ${fmt(r.directOne.p50Ms, 3)} ms`,
    }),
    judge('mcp-proxy-initialize-per-session', {
      subject: 'sessions and stateless',
      value: r.initializes / r.sessionsOpened,
      detail: `${r.initializes} upstream initialize for ${r.sessionsOpened} sessions and ${fmt(
        Object.values(r.runs)
          .flat()
          .reduce((s, run) => s + run.ok, 0),
        0,
      )} calls`,
    }),
    judge('mcp-proxy-initialize-per-session', {
      subject: `${r.churn.total} sessions opened and closed`,
      value: r.churn.initializes / r.churn.total,
      detail: `${r.churn.initializes} upstream initialize`,
    }),
    judge('mcp-proxy-session-memory', {
      subject: `${r.churn.total} sessions`,
      value: r.churn.heapGrowthMiB,
      scale: r.churn.total,
      detail: `heap after GC ${r.churn.samples.map((s) => fmt(s.heapUsedMiB, 1)).join(' → ')} MiB, RSS ${r.churn.samples.map((s) => fmt(s.rssMiB, 0)).join(' → ')} MiB; ${r.churn.sessionsLeft} sessions left`,
    }),
  ];
};

/**
 * @param {McpProxyResult} r
 * @returns {[string, string][]}
 */
const report = (r) => {
  const rows = [
    { what: 'direct', connections: settings.connections, s: r.direct },
    { what: 'proxy, session', connections: settings.connections, s: r.proxy },
    { what: 'proxy, stateless', connections: settings.connections, s: r.stateless },
    { what: 'direct', connections: 1, s: r.directOne },
    { what: 'proxy, session', connections: 1, s: r.proxyOne },
    { what: 'proxy, stateless', connections: 1, s: r.statelessOne },
  ];
  const c = r.churn;
  const lines = [
    'path               connections  calls/s  p50 ms  p99 ms  non-2xx  CPU ms/call vault (loop busy)  upstream',
    ...rows.map(({ what, connections, s }) =>
      [
        what.padEnd(19),
        String(connections).padEnd(13),
        fmt(s.rps, 0).padEnd(9),
        fmt(s.p50Ms, 3).padEnd(8),
        fmt(s.p99Ms, 3).padEnd(8),
        String(s.non2xx).padEnd(9),
        `${fmt(s.vaultCpuMsPerCall, 3)} (${fmt(s.vaultEventLoopUse * 100, 0)} %)`.padEnd(31),
        fmt(s.upstreamCpuMsPerCall, 3),
      ].join(''),
    ),
    '',
    `proxy / direct: ${fmt(r.ratioPercent, 1)} % (stateless ${fmt(r.statelessRatioPercent, 1)} %); added at p50: ${fmt(r.addedP50Ms, 3)} ms (stateless ${fmt(r.statelessAddedP50Ms, 3)} ms)`,
    `one durable audit event alone: p50 ${fmt(r.durable.p50Ms, 3)} ms, p99 ${fmt(r.durable.p99Ms, 3)} ms (${r.durable.n} in a row)`,
    `upstream initialize: ${r.initializes} for ${r.sessionsOpened} proxied sessions; runs with audit gaps: ${r.auditGaps}, with call gaps: ${r.callGaps}`,
    `${c.total} sessions opened, called once and closed (${c.concurrency} at a time, ${fmt(c.seconds, 1)} s): ${c.initializes} upstream initialize`,
    `  vault after GC (start, middle, end): heap ${c.samples.map((s) => fmt(s.heapUsedMiB, 1)).join(' / ')} MiB, RSS ${c.samples.map((s) => fmt(s.rssMiB, 1)).join(' / ')} MiB; sessions held ${c.samples.map((s) => s.sessions).join(' / ')}`,
    `  upstream: ${c.upstreamDeleted} sessions ended by DELETE, ${c.upstreamHeld} still held`,
    ...(r.statementTimes
      ? [
          'SQLite statements holding the main thread in the measured rounds (BENCH_STATEMENT_TIMES=1):',
          ...r.statementTimes.map(
            (t) =>
              `  ${fmt(t.ms, 0).padStart(6)} ms  ${String(t.n).padStart(7)}×  max ${fmt(t.maxMs, 1)} ms  ${t.sql}`,
          ),
        ]
      : []),
    ...(r.profile
      ? [`CPU profile of a proxied run (${fmt(r.profile.rps, 0)} calls/s): ${r.profile.file}`]
      : []),
  ];
  return [['MCP proxy vs the upstream directly', lines.join('\n')]];
};

/** @type {import('./section.mjs').Section<object, McpProxyResult>} */
export const mcpProxySection = { name: 'mcp-proxy', run: () => benchMcpProxy(), verdicts, report };
