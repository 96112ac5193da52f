// Plain-text tables for the console.

const fmt = (value, digits = 2) =>
  value === undefined || value === null || Number.isNaN(value) ? '–' : Number(value).toFixed(digits);

const share = (value) => (value === undefined ? '–' : `${fmt(value * 100, 0)} %`);

const table = (headers, rows) => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ');
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
};

export const loadTable = (runs) =>
  table(
    [
      'server',
      'operation',
      'req/s',
      'p50 ms',
      'p99 ms',
      'vs ceiling',
      'non-2xx',
      'load gen CPU',
      'others CPU',
    ],
    runs.map((r) => [
      r.server,
      r.operation,
      fmt(r.rps, 0),
      fmt(r.latencyMs.p50),
      fmt(r.latencyMs.p99),
      r.ratioToCeiling === undefined ? '(ceiling)' : `${fmt(r.ratioToCeiling * 100, 1)} %`,
      r.non2xx + r.errors,
      share(r.loadGeneratorCpuShare),
      share(r.otherCpuShare),
    ]),
  );

export const serverTimeTable = (runs) =>
  table(
    [
      'server',
      'operation',
      'CPU ms/req',
      'db CPU ms/req',
      'event loop busy',
      'in-server mean ms',
      'in-server p50 ms',
      'in-server p99 ms',
      '<= 0.5 ms',
      '<= 1 ms',
    ],
    runs.map((r) => [
      r.server,
      r.operation,
      fmt(r.serverCpuMsPerRequest, 3),
      fmt(r.dbCpuMsPerRequest, 3),
      `${fmt(r.eventLoopUtilization * 100, 0)} %`,
      fmt(r.inServer?.meanMs, 3),
      fmt(r.inServer?.p50Ms, 3),
      fmt(r.inServer?.p99Ms, 3),
      r.inServer ? `${fmt(r.inServer.under0_5ms * 100, 1)} %` : '–',
      r.inServer ? `${fmt(r.inServer.under1ms * 100, 1)} %` : '–',
    ]),
  );

export const injectTable = (rows) =>
  table(
    ['store', 'one at a time', 'p50 ms', 'p99 ms', 'statements/req'],
    rows.map((r) => [r.store, r.n, fmt(r.p50Ms, 3), fmt(r.p99Ms, 3), fmt(r.statementsPerRequest, 1)]),
  );

export const rewrapTable = (rows) =>
  table(
    ['store', 'keys', 'batch', 'seed s', 're-wrap s', 'keys/s', 'vault CPU s', 'db CPU s', 'verified'],
    rows.map((r) => [
      r.store,
      r.done,
      r.batchSize,
      fmt(r.seedSeconds, 1),
      fmt(r.jobSeconds, 1),
      fmt(r.keysPerSecond, 0),
      fmt(r.vaultCpuSeconds, 1),
      fmt(r.dbCpuSeconds, 1),
      r.allUnderNewKey && r.verify.ok ? 'yes' : 'NO',
    ]),
  );

export const retrievalTable = (runs) =>
  table(
    [
      'server',
      'req/s',
      'p50 ms',
      'p99 ms',
      'vs ceiling',
      'CPU ms/req',
      'main thread ms/req',
      'db CPU ms/req',
      'statements/req',
      'event loop busy',
      'in-server p50 ms',
      'in-server p99 ms',
      'failed',
      'load gen CPU',
      'others CPU',
    ],
    runs.map((r) => [
      r.server,
      fmt(r.rps, 0),
      fmt(r.latencyMs.p50),
      fmt(r.latencyMs.p99),
      r.ratioToCeiling === undefined ? '(ceiling)' : `${fmt(r.ratioToCeiling * 100, 1)} %`,
      fmt(r.serverCpuMsPerRequest, 3),
      fmt(r.mainThreadCpuMsPerRequest, 3),
      fmt(r.dbCpuMsPerRequest, 3),
      fmt(r.statementsPerRequest, 1),
      `${fmt(r.eventLoopUtilization * 100, 0)} %`,
      fmt(r.inServer?.p50Ms, 3),
      fmt(r.inServer?.p99Ms, 3),
      r.non2xx + r.errors,
      share(r.loadGeneratorCpuShare),
      share(r.otherCpuShare),
    ]),
  );

export const halfRateTable = (runs) =>
  table(
    [
      'server',
      'pacing',
      'rate asked',
      'req/s',
      'p50 ms',
      'p99 ms',
      'p99 from due ms',
      'send delay p99 ms',
      'in-server p50 ms',
      'in-server p99 ms',
      'CPU ms/req',
      'db CPU ms/req',
      'statements/req',
      'event loop busy',
      'loop delay p99 ms',
      'loop delay max ms',
      'failed',
      'others CPU',
    ],
    runs.map((r) => [
      r.server,
      r.pacing,
      fmt(r.rateAsked, 0),
      fmt(r.rps, 0),
      fmt(r.latencyMs.p50),
      fmt(r.latencyMs.p99),
      fmt(r.fromDueMs?.p99),
      fmt(r.sendDelayMs?.p99),
      fmt(r.inServer?.p50Ms, 3),
      fmt(r.inServer?.p99Ms, 3),
      fmt(r.serverCpuMsPerRequest, 3),
      fmt(r.dbCpuMsPerRequest, 3),
      fmt(r.statementsPerRequest, 1),
      `${fmt(r.eventLoopUtilization * 100, 0)} %`,
      fmt(r.eventLoopDelayMs?.p99),
      fmt(r.eventLoopDelayMs?.max),
      r.non2xx + r.errors,
      share(r.otherCpuShare),
    ]),
  );

export const auditCheckTable = (runs) =>
  table(
    [
      'server',
      'pacing',
      'requests sent',
      '200s received',
      'other answers',
      'dropped by load gen',
      'retrieve allow events',
      'retrieve deny events',
      'other events',
      'one event per request',
    ],
    runs.map((r) => [
      r.server,
      r.pacing,
      r.audit.sent,
      r.audit.client200,
      r.audit.clientOther,
      r.audit.abandoned,
      r.audit.retrieveAllow,
      r.audit.retrieveDeny,
      r.audit.otherEvents,
      r.audit.match ? 'yes' : 'NO',
    ]),
  );

export const auditVerifyTable = (rows) =>
  table(
    ['store', 'events', 'write s', 'verify s', 'verify CPU s', 'events/s', 'others CPU', 'target'],
    rows.map((r) => [
      'sqlite',
      r.events,
      fmt(r.writeSeconds, 1),
      fmt(r.verifySeconds, 2),
      fmt(r.verifyCpuSeconds, 2),
      fmt(r.verifyEventsPerSecond, 0),
      share(r.othersCpuShare),
      r.events >= 1_000_000 ? (r.verifySeconds < 10 ? '< 10 s: met' : '< 10 s: NOT met') : 'n/a',
    ]),
  );
