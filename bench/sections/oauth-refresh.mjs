// @ts-check
// Section `oauth-refresh` (issue 13): the refresh scheduler against a local oidc-provider in a process
// of its own (oauth-provider.mjs: rotating refresh tokens, one-hour opaque access tokens), one SQLite
// vault in its default configuration but for a refresh margin of its own (BENCH_OAUTH_MARGIN):
//
// 1. `BENCH_OAUTH_REFRESH_COUNT` credentials (10,000), each due at a point of one window
//    (`BENCH_OAUTH_REFRESH_WINDOW`, 600 s) and its access token expiring one margin later. The
//    vault's own scheduler worker (its default poll and concurrency) refreshes them at the provider's
//    token endpoint: refreshes a second, how many after their token expired (late), the lag after
//    the due time, and the CPU of the vault and of the provider.
// 2. The scheduler's pass with nothing due, at `BENCH_OAUTH_IDLE_SMALL` (1,000) and
//    `BENCH_OAUTH_IDLE_LARGE` (100,000) credentials: CPU per pass, and the ratio.
// 3. Retrieval of api_key credentials by an agent while `BENCH_OAUTH_REFRESH_RATE` (100) refreshes
//    a second run in the same vault, against retrieval with none, in alternating runs of the same
//    rounds; with the statements a retrieval sent in each, which is what a refresh emptying the
//    caches other agents rely on would raise.
// The full section takes about twelve minutes, most of it the window.

import { openSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../children.mjs';
import { runLoad, scrapeCounter } from '../load.mjs';
import { median } from '../measure.mjs';
import { log, settings, tempDir } from '../settings.mjs';
import { judge } from '../verdicts.mjs';

const appName = 'bench-op';
// Seconds before expiry the vault refreshes; each seeded token is due one margin before it expires.
const marginS = Number(process.env.BENCH_OAUTH_MARGIN ?? (settings.smoke ? 10 : 60));
const day = 86_400_000;

/** @param {number | undefined} value @param {number} [digits] */
const fmt = (value, digits = 2) =>
  value === undefined || !Number.isFinite(value) ? '–' : Number(value).toFixed(digits);

const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** What an agent sends: one of its granted api_key credentials, at random. */
const requestsOf = (/** @type {any} */ access, /** @type {number} */ count) => (/** @type {any} */ req) => ({
  ...req,
  method: 'GET',
  path: `/v1/agents/${access.agentId}/credentials/read-${Math.floor(Math.random() * count)}`,
  headers: { authorization: `Bearer ${access.apiKey}` },
});

/**
 * Credentials the scheduler must not touch during the measurement: due in thirty days, placeholder
 * tokens (never sent anywhere).
 * @param {any} vault @param {string} appId @param {string} subjectPrefix @param {number} count
 */
const seedIdle = (vault, appId, subjectPrefix, count) =>
  vault.call('seedOAuth', {
    appId,
    appName,
    subjectPrefix,
    count,
    window: { start: Date.now() + 30 * day, windowMs: 0, count, lagMs: 3_600_000 },
  });

/** @param {any} vault @param {number} size */
const idleAt = async (vault, size) => {
  const passes = settings.smoke ? 50 : 2000;
  const result = await vault.call('idlePasses', { passes, warmup: settings.smoke ? 5 : 200, adoptions: 3 });
  log(
    `oauth-refresh: ${result.states} refresh states, nothing due: ${fmt(result.cpuMsPerPass, 3)} ms CPU a pass (${passes} passes), adoption sweep ${fmt(result.adoptCpuMs, 1)} ms`,
  );
  if (result.refreshedDuring !== 0) throw new Error(`${result.refreshedDuring} refreshes in the idle passes`);
  return { size, ...result };
};

/**
 * Part 1: the window. Its start is set far enough ahead for the tokens to be minted and stored.
 * @param {any} op @param {any} vault @param {string} appId
 */
const dueInOneWindow = async (op, vault, appId) => {
  const count = settings.oauthRefreshCount;
  const windowMs = settings.oauthRefreshWindow * 1000;
  const window = { start: Date.now() + 5000 + count * 1.5, windowMs, count, lagMs: marginS * 1000 };
  const expiresAt = Array.from(
    { length: count },
    (_, i) => window.start + Math.floor((i / count) * windowMs) + window.lagMs,
  );
  log(`oauth-refresh: minting ${count} refresh and access tokens at the OAuth server`);
  const tokens = await op.call('mint', { expiresAt });
  const seeded = await vault.call('seedOAuth', { appId, appName, subjectPrefix: 'user-', tokens, window });
  const overran = Date.now() - window.start;
  log(
    `oauth-refresh: ${count} credentials stored in ${fmt(seeded.seconds, 1)} s; due over ${settings.oauthRefreshWindow} s from ${new Date(window.start).toISOString()}`,
  );
  const before = await op.call('opStats');
  await sleep(Math.max(0, window.start - Date.now()));
  await vault.call('mark');
  await op.call('mark');
  // Until every credential is refreshed, or the last token has expired with a margin's grace.
  const deadline = window.start + windowMs + window.lagMs + 5000;
  for (;;) {
    const done = await vault.call('refreshProgress', { subjectPrefix: 'user-' });
    if (done >= count || Date.now() > deadline) break;
    log(`oauth-refresh: ${done} of ${count} refreshed`);
    await sleep(settings.smoke ? 500 : 15_000);
  }
  const vaultCpu = await vault.call('measure');
  const opCpu = await op.call('measure');
  const after = await op.call('opStats');
  const outcome = await vault.call('refreshOutcome', { subjectPrefix: 'user-', window });
  const requests = (after.requests.refresh_token ?? 0) - (before.requests.refresh_token ?? 0);
  const successes = (after.successes.refresh_token ?? 0) - (before.successes.refresh_token ?? 0);
  const spanS = Math.max(windowMs, outcome.lastRefreshAt - window.start) / 1000;
  return {
    count,
    windowS: windowMs / 1000,
    marginS,
    seedSeconds: seeded.seconds,
    // The window began before the credentials were stored (a slow machine): the first ones bunched.
    seedOverranMs: Math.max(0, overran),
    ...outcome,
    providerRequests: requests,
    providerSuccesses: successes,
    perSecond: outcome.refreshed / spanS,
    vaultCpuMsPerRefresh: vaultCpu.cpuMs / Math.max(1, outcome.refreshed),
    providerCpuMsPerRefresh: opCpu.cpuMs / Math.max(1, outcome.refreshed),
    vaultStatementsPerRefresh: vaultCpu.statements / Math.max(1, outcome.refreshed),
  };
};

/** The access cache's lookups so far, answered by the cache (hit) and by the database (miss). */
const cacheLookups = async (/** @type {string} */ url) => ({
  hit: await scrapeCounter(url, 'tokenvault_access_cache_lookups_total', { result: 'hit' }),
  miss: await scrapeCounter(url, 'tokenvault_access_cache_lookups_total', { result: 'miss' }),
  // The audit thread's group commits (the retrievals' events; a refresh records its own in its
  // transaction on the main connection), for where the retrievals' time goes.
  auditCommits: Number(
    /^tokenvault_audit_commits_total (\S+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? NaN,
  ),
});

/**
 * Part 3: retrieval with and without refreshes running, alternating in the same rounds.
 * @param {any} vault
 */
const retrievalBesideRefreshes = async (vault) => {
  const count = Math.min(settings.retrievalTargets, 1000);
  const rate = settings.oauthRefreshRate;
  log(`oauth-refresh: ${count} api_key credentials and an agent granted all of them`);
  await vault.call('seed', { count, prefix: 'read-' });
  const access = await vault.call('setupRetrieval', {
    targets: count,
    prefix: 'read-',
    agentName: 'bench-agent',
  });
  const load = (/** @type {number} */ duration) =>
    runLoad({
      url: vault.url,
      connections: settings.connections,
      duration,
      setupRequest: requestsOf(access, count),
    });
  if (settings.warmup > 0) await load(settings.warmup);
  // Every granted credential retrieved once, so no round starts with a cold cache (a slow round
  // would otherwise count first reads as misses).
  await vault.call('injectRetrievals', { n: count, warmup: 0, targets: count, prefix: 'read-', ...access });
  // The refreshes alone first: their statements and CPU, so the retrievals' own can be told apart
  // below (and, with BENCH_CPU_PROF, where a refresh's CPU goes).
  if (settings.profileDir) await vault.call('profileStart');
  await vault.call('mark');
  const alone = await vault.call('refreshAtRate', {
    subjectPrefix: 'user-',
    rate,
    seconds: settings.duration,
  });
  const aloneMeasured = await vault.call('measure');
  if (settings.profileDir) {
    const file = join(settings.profileDir, 'oauth-refresh-alone.cpuprofile');
    log(`oauth-refresh: CPU profile of the refreshes alone in ${await vault.call('profileStop', { file })}`);
  }
  const refreshedAlone = alone.outcomes.refreshed ?? 0;
  const statementsPerRefresh = aloneMeasured.statements / Math.max(1, refreshedAlone);
  const cpuMsPerRefresh = aloneMeasured.cpuMs / Math.max(1, refreshedAlone);
  log(
    `oauth-refresh: ${refreshedAlone} refreshes alone at ${fmt(alone.perSecond, 1)}/s, ${fmt(alone.cpuMs / Math.max(1, refreshedAlone), 2)} ms CPU and ${fmt(statementsPerRefresh, 1)} statements each`,
  );
  /** @type {{ none: any[], refreshing: any[] }} */
  const runs = { none: [], refreshing: [] };
  for (let round = 1; round <= settings.rounds; round++) {
    /** @type {('none' | 'refreshing')[]} */
    const order = round % 2 === 1 ? ['none', 'refreshing'] : ['refreshing', 'none'];
    for (const kind of order) {
      log(
        `round ${round}/${settings.rounds}: retrieval, ${kind === 'none' ? 'no refreshes' : `${rate} refreshes a second`}`,
      );
      const cacheBefore = await cacheLookups(vault.url);
      // BENCH_CPU_PROF: the first round with refreshes too, where the retrievals' time went.
      const profiled = settings.profileDir && kind === 'refreshing' && round <= 2;
      if (profiled) await vault.call('profileStart');
      await vault.call('mark');
      const refreshes =
        kind === 'refreshing'
          ? vault.call('refreshAtRate', { subjectPrefix: 'user-', rate, seconds: settings.duration })
          : Promise.resolve(undefined);
      const result = await load(settings.duration);
      const refreshed = await refreshes;
      const measured = await vault.call('measure');
      if (profiled && settings.profileDir) {
        const file = join(settings.profileDir, 'oauth-refresh-beside-retrieval.cpuprofile');
        log(
          `oauth-refresh: CPU profile of retrieval beside refreshes in ${await vault.call('profileStop', { file })}`,
        );
      }
      const cacheAfter = await cacheLookups(vault.url);
      if (result.ok !== result.requests || result.errors > 0) {
        throw new Error(
          `oauth-refresh: ${result.requests - result.ok} of ${result.requests} retrievals not answered 200`,
        );
      }
      const done = refreshed?.outcomes.refreshed ?? 0;
      runs[kind].push({
        rps: result.rps,
        p50Ms: result.latencyMs.p50,
        p99Ms: result.latencyMs.p99,
        requests: result.requests,
        refreshes: done,
        refreshesPerSecond: refreshed?.perSecond ?? 0,
        refreshOutcomes: refreshed?.outcomes,
        // The access cache's answers from the database (a refresh that emptied the caches other
        // agents rely on would raise these), per retrieval.
        cacheMissesPerRetrieval: (cacheAfter.miss - cacheBefore.miss) / Math.max(1, result.requests),
        cacheHitPercent:
          (100 * (cacheAfter.hit - cacheBefore.hit)) /
          Math.max(1, cacheAfter.hit - cacheBefore.hit + cacheAfter.miss - cacheBefore.miss),
        auditCommitsPerSecond: (cacheAfter.auditCommits - cacheBefore.auditCommits) / settings.duration,
        retrievalsPerAuditCommit:
          result.requests / Math.max(1, cacheAfter.auditCommits - cacheBefore.auditCommits),
        eventLoopUtilization: measured.eventLoopUtilization,
        eventLoopDelayP99Ms: measured.eventLoopDelayMs.p99,
        // The statements of the run less the refreshes' own (as measured alone), per retrieval.
        statementsPerRetrieval:
          (measured.statements - done * statementsPerRefresh) / Math.max(1, result.requests),
        // Likewise the vault's CPU less the refreshes' own, per retrieval.
        cpuMsPerRetrieval: (measured.cpuMs - done * cpuMsPerRefresh) / Math.max(1, result.requests),
      });
    }
  }
  const ratios = runs.none.map((r, i) => (100 * runs.refreshing[i].rps) / r.rps);
  /** @param {any[]} list */
  const summary = (list) => ({
    rps: median(list.map((r) => r.rps)),
    p50Ms: median(list.map((r) => r.p50Ms)),
    p99Ms: median(list.map((r) => r.p99Ms)),
    refreshesPerSecond: median(list.map((r) => r.refreshesPerSecond)),
    statementsPerRetrieval: median(list.map((r) => r.statementsPerRetrieval)),
    cacheMissesPerRetrieval: median(list.map((r) => r.cacheMissesPerRetrieval)),
    cacheHitPercent: median(list.map((r) => r.cacheHitPercent)),
    auditCommitsPerSecond: median(list.map((r) => r.auditCommitsPerSecond)),
    retrievalsPerAuditCommit: median(list.map((r) => r.retrievalsPerAuditCommit)),
    eventLoopUtilization: median(list.map((r) => r.eventLoopUtilization)),
    eventLoopDelayP99Ms: median(list.map((r) => r.eventLoopDelayP99Ms)),
    cpuMsPerRetrieval: median(list.map((r) => r.cpuMsPerRetrieval)),
    perRound: list.map((r) => Math.round(r.rps)),
  });
  return {
    rate,
    alone: { ...alone, statementsPerRefresh, cpuMsPerRefresh },
    none: summary(runs.none),
    refreshing: summary(runs.refreshing),
    percent: median(ratios),
    perRound: ratios,
    runs,
  };
};

const benchOAuthRefresh = async () => {
  const op = await startServer('op', { BENCH_OP_ACCESS_TTL: '3600' });
  const dataDir = tempDir();
  const vault = await startServer(
    'vault',
    { BENCH_DATA_DIR: dataDir, BENCH_VAULT_OAUTH_MARGIN: String(marginS) },
    { stdout: openSync(join(dataDir, 'vault.log'), 'a') },
  );
  try {
    const provider = await op.call('opClient');
    const appId = await vault.call('setupOAuthApp', {
      name: appName,
      tokenUrl: `${provider.url}/token`,
      clientId: provider.client.client_id,
      clientSecret: provider.client.client_secret,
      resource: provider.resource,
    });
    const small = settings.oauthIdleSmall;
    const large = Math.max(settings.oauthIdleLarge, small + settings.oauthRefreshCount);
    log(`oauth-refresh: ${small} credentials due in thirty days`);
    await seedIdle(vault, appId, 'idle-user-', small);
    const idleSmall = await idleAt(vault, small);
    const window = await dueInOneWindow(op, vault, appId);
    log(
      `oauth-refresh: ${window.refreshed} refreshed, ${window.late} late, lag p50 ${fmt(window.lagMs.p50 / 1000, 1)} s, max ${fmt(window.lagMs.max / 1000, 1)} s`,
    );
    const rest = large - small - settings.oauthRefreshCount;
    log(`oauth-refresh: ${rest} more credentials due in thirty days (${large} in all)`);
    const seededRest = await seedIdle(vault, appId, 'idle-more-', rest);
    const idleLarge = await idleAt(vault, large);
    const retrieval = await retrievalBesideRefreshes(vault);
    return {
      window,
      idle: {
        small: idleSmall,
        large: idleLarge,
        ratioPercent: (100 * idleLarge.cpuMsPerPass) / idleSmall.cpuMsPerPass,
        seedSeconds: seededRest.seconds,
        seeded: rest,
      },
      retrieval,
    };
  } finally {
    await vault.stop();
    await op.stop();
  }
};

/** @typedef {Awaited<ReturnType<typeof benchOAuthRefresh>>} OAuthRefreshResult */

/** @param {OAuthRefreshResult} r */
const verdicts = (r) => [
  judge('oauth-refresh-late', {
    subject: `sqlite, ${r.window.count} due within ${r.window.windowS} s, margin ${r.window.marginS} s`,
    value: r.window.late,
    scale: r.window.count,
    detail: `${r.window.refreshed} refreshed at ${fmt(r.window.perSecond, 1)}/s, lag after due p50 ${fmt(r.window.lagMs.p50 / 1000, 1)} s, max ${fmt(r.window.lagMs.max / 1000, 1)} s; ${r.window.providerSuccesses} of ${r.window.providerRequests} refresh requests answered 200 at the provider`,
  }),
  judge('oauth-scheduler-idle', {
    subject: `sqlite, ${r.idle.large.states} vs ${r.idle.small.states} refresh states`,
    value: r.idle.ratioPercent,
    scale: r.idle.large.states,
    detail: `${fmt(r.idle.large.cpuMsPerPass, 3)} vs ${fmt(r.idle.small.cpuMsPerPass, 3)} ms CPU a pass`,
  }),
  judge('oauth-retrieval-during-refresh', {
    subject: `sqlite, ${settings.connections} connections`,
    value: r.retrieval.percent,
    scale: r.retrieval.rate,
    detail: `median of per-round ratios ${r.retrieval.perRound.map((p) => `${p.toFixed(0)} %`).join(', ')}; ${fmt(r.retrieval.refreshing.rps, 0)} vs ${fmt(r.retrieval.none.rps, 0)} req/s, ${fmt(r.retrieval.refreshing.refreshesPerSecond, 1)} refreshes/s achieved`,
  }),
];

/**
 * @param {OAuthRefreshResult} r
 * @returns {[string, string][]}
 */
const report = (r) => {
  const w = r.window;
  const windowLines = [
    `${w.count} credentials due over ${w.windowS} s, each token expiring ${w.marginS} s after it is due (stored in ${fmt(w.seedSeconds, 1)} s)`,
    `refreshed ${w.refreshed} (${fmt(w.perSecond, 1)}/s), late ${w.late}, failures ${w.failures}, not active ${w.notActive}`,
    `lag after the due time: p50 ${fmt(w.lagMs.p50 / 1000, 2)} s, p99 ${fmt(w.lagMs.p99 / 1000, 2)} s, max ${fmt(w.lagMs.max / 1000, 2)} s`,
    `the provider: ${w.providerSuccesses} of ${w.providerRequests} refresh requests answered 200`,
    `CPU a refresh: vault ${fmt(w.vaultCpuMsPerRefresh, 2)} ms (${fmt(w.vaultStatementsPerRefresh, 1)} statements), provider ${fmt(w.providerCpuMsPerRefresh, 2)} ms`,
    '',
    `nothing due: ${fmt(r.idle.small.cpuMsPerPass, 3)} ms CPU a pass at ${r.idle.small.states} refresh states, ${fmt(r.idle.large.cpuMsPerPass, 3)} ms at ${r.idle.large.states} (${fmt(r.idle.ratioPercent, 0)} %)`,
    `the adoption sweep (once a minute): ${fmt(r.idle.small.adoptCpuMs, 1)} ms at ${r.idle.small.states}, ${fmt(r.idle.large.adoptCpuMs, 1)} ms at ${r.idle.large.states}; ${r.idle.seeded} stored in ${fmt(r.idle.seedSeconds, 1)} s`,
  ];
  const t = r.retrieval;
  const rows = [
    ['no refreshes', t.none],
    [`${t.rate} refreshes/s`, t.refreshing],
  ].map(([label, s]) => [
    String(label),
    fmt(/** @type {any} */ (s).rps, 0),
    fmt(/** @type {any} */ (s).p50Ms, 2),
    fmt(/** @type {any} */ (s).p99Ms, 2),
    fmt(/** @type {any} */ (s).cacheHitPercent, 2),
    fmt(/** @type {any} */ (s).cacheMissesPerRetrieval, 3),
    fmt(/** @type {any} */ (s).statementsPerRetrieval, 2),
    fmt(/** @type {any} */ (s).cpuMsPerRetrieval, 3),
    fmt(/** @type {any} */ (s).refreshesPerSecond, 1),
    /** @type {any} */ (s).perRound.join(' / '),
  ]);
  const headers = [
    'retrieval beside',
    'req/s',
    'p50 ms',
    'p99 ms',
    'cache hit %',
    'misses/req',
    'statements/req',
    'CPU ms/req',
    'refreshes/s',
    'req/s per round',
  ];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (/** @type {string[]} */ cells) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  const table = [
    line(headers),
    line(widths.map((n) => '-'.repeat(n))),
    ...rows.map(line),
    '',
    `the vault's event loop busy ${fmt(100 * (t.none.eventLoopUtilization ?? NaN), 0)} % without refreshes, ${fmt(100 * (t.refreshing.eventLoopUtilization ?? NaN), 0)} % with (delay p99 ${fmt(t.none.eventLoopDelayP99Ms, 1)} / ${fmt(t.refreshing.eventLoopDelayP99Ms, 1)} ms); audit group commits ${fmt(t.none.auditCommitsPerSecond, 0)} / ${fmt(t.refreshing.auditCommitsPerSecond, 0)} a second, ${fmt(t.none.retrievalsPerAuditCommit, 1)} / ${fmt(t.refreshing.retrievalsPerAuditCommit, 1)} retrievals each`,
    `refreshes alone: ${fmt(t.alone.perSecond, 1)}/s, ${fmt(t.alone.cpuMsPerRefresh, 2)} ms vault CPU and ${fmt(t.alone.statementsPerRefresh, 1)} statements each`,
  ].join('\n');
  return [
    ['OAuth refresh: due in one window, and the scheduler with nothing due', windowLines.join('\n')],
    [
      `retrieval while refreshes run, SQLite: ${fmt(t.percent, 1)} % of none (median of the rounds' ratios)`,
      table,
    ],
  ];
};

/** @type {import('./section.mjs').Section<object, OAuthRefreshResult>} */
export const oauthRefreshSection = {
  name: 'oauth-refresh',
  run: () => benchOAuthRefresh(),
  verdicts,
  report,
};
