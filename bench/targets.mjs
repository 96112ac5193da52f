// @ts-check
// Every target the bench judges: one place for what is promised, by how much, and who asked. The
// sections compute a figure per target (verdicts.mjs compares it with the threshold); no verdict is
// written anywhere else. docs/benchmarks.md shows the same list with the latest figures.

/**
 * @typedef {object} BenchTarget
 * @property {string} id
 * @property {import('./settings.mjs').SectionName} section
 * @property {string} description  what is promised, as the report prints it
 * @property {number} threshold
 * @property {'<' | '<=' | '>='} compare  how the figure must compare with the threshold to be met
 * @property {string} unit  the figure's unit (`ms`, `s`, `%` …), for the report
 * @property {string} issue  who set the target
 * @property {{ of: string, atLeast: number }} [scale]  judged only when the run was at least this big
 */

/** @type {BenchTarget[]} */
export const targets = [
  {
    id: 'read-server-time',
    section: 'admin',
    description: 'an admin read costs under 1 ms (CPU per read, and p50 one at a time)',
    threshold: 1,
    compare: '<',
    unit: 'ms',
    issue: 'issue 1',
  },
  {
    id: 'retrieval-vs-ceiling',
    section: 'retrieval',
    description: "retrieval at >= 50 % of the node:http ceiling's req/s (judged on SQLite)",
    threshold: 50,
    compare: '>=',
    unit: '%',
    issue: 'issue 3',
  },
  {
    id: 'retrieval-p99-half-rate',
    section: 'retrieval',
    description: 'retrieval p99 <= 5 ms at half the maximum rate (paced)',
    threshold: 5,
    compare: '<=',
    unit: 'ms',
    issue: 'issue 3',
  },
  {
    id: 'retrieval-audit-complete',
    section: 'retrieval',
    description: 'no retrieval audit event dropped (runs where events and requests differ)',
    threshold: 0,
    compare: '<=',
    unit: 'runs',
    issue: 'issue 3',
  },
  {
    id: 'default-config-vs-logging-off',
    section: 'retrieval',
    description: "the default configuration's retrieval req/s within 5 % of logging off, same run",
    threshold: 95,
    compare: '>=',
    unit: '%',
    issue: 'issue 12',
  },
  {
    id: 'rewrap-100k',
    section: 'rewrap',
    description: 're-wrap of 100,000 data keys after a rotation in under 60 s',
    threshold: 60,
    compare: '<',
    unit: 's',
    issue: 'issue 1',
    scale: { of: 'keys', atLeast: 100_000 },
  },
  {
    id: 'audit-verify-1m',
    section: 'audit',
    description: '`audit verify` over 1,000,000 events in under 10 s',
    threshold: 10,
    compare: '<',
    unit: 's',
    issue: 'issue 3',
    scale: { of: 'events', atLeast: 1_000_000 },
  },
  {
    id: 'proxy-vs-direct',
    section: 'proxy',
    description:
      "calls through the HTTP proxy (API key, proxy-only grant, audit durable) at >= 60 % of the upstream's direct req/s",
    threshold: 60,
    compare: '>=',
    unit: '%',
    issue: 'issue 14',
  },
  {
    id: 'proxy-added-p50',
    section: 'proxy',
    description: 'the HTTP proxy adds <= 1 ms at the median (one call at a time)',
    threshold: 1,
    compare: '<=',
    unit: 'ms',
    issue: 'issue 14',
  },
  {
    id: 'proxy-stream-memory',
    section: 'proxy',
    description: "a 100 MB body up and down through the proxy grows the vault's peak memory by < 64 MiB",
    threshold: 64,
    compare: '<',
    unit: 'MiB',
    issue: 'issue 14',
    scale: { of: 'MB', atLeast: 100 },
  },
  {
    id: 'policies-vs-none',
    section: 'policies',
    description: 'retrieval with three policies attached at >= 90 % of the req/s with none, same run',
    threshold: 90,
    compare: '>=',
    unit: '%',
    issue: 'issue 15',
  },
  {
    id: 'mcp-proxy-vs-direct',
    section: 'mcp-proxy',
    description:
      "`tools/call` through the MCP proxy (proxy key, a kept session, audit durable) at >= 70 % of the upstream's direct calls/s",
    threshold: 70,
    compare: '>=',
    unit: '%',
    issue: 'issue 16',
  },
  {
    id: 'mcp-proxy-added-p50',
    section: 'mcp-proxy',
    description: 'the MCP proxy adds <= 1 ms to a `tools/call` at the median (one call at a time)',
    threshold: 1,
    compare: '<=',
    unit: 'ms',
    issue: 'issue 16',
  },
  {
    id: 'mcp-proxy-initialize-per-session',
    section: 'mcp-proxy',
    description:
      'one upstream `initialize` per agent session, none per call (upstream initializes / sessions)',
    threshold: 1,
    compare: '<=',
    unit: 'per session',
    issue: 'issue 16',
  },
  {
    id: 'mcp-proxy-session-memory',
    section: 'mcp-proxy',
    description:
      "10,000 MCP sessions opened and closed grow the vault's heap after GC by < 8 MiB (flat: under 1 KB a session)",
    threshold: 8,
    compare: '<',
    unit: 'MiB',
    issue: 'issue 16',
    scale: { of: 'sessions', atLeast: 10_000 },
  },
  {
    id: 'oauth-refresh-late',
    section: 'oauth-refresh',
    description:
      'OAuth credentials all due within ten minutes, refreshed at the local OAuth server: none after its token expired',
    threshold: 0,
    compare: '<=',
    unit: 'late',
    issue: 'issue 13',
    scale: { of: 'credentials', atLeast: 10_000 },
  },
  {
    id: 'oauth-scheduler-idle',
    section: 'oauth-refresh',
    description:
      "the refresh scheduler's CPU per pass with nothing due at 100,000 credentials, against 1,000 (the same within noise: <= 150 %)",
    threshold: 150,
    compare: '<=',
    unit: '%',
    issue: 'issue 13',
    scale: { of: 'credentials', atLeast: 100_000 },
  },
  {
    id: 'oauth-retrieval-during-refresh',
    section: 'oauth-refresh',
    description: 'retrieval req/s while 100 refreshes a second run, against none, same run (>= 90 %)',
    threshold: 90,
    compare: '>=',
    unit: '%',
    issue: 'issue 13',
    scale: { of: 'refreshes a second', atLeast: 100 },
  },
];

/**
 * The target with this id; a typo is an error, not a verdict that never shows up.
 * @param {string} id
 * @returns {BenchTarget}
 */
export const target = (id) => {
  const found = targets.find((t) => t.id === id);
  if (!found) throw new Error(`no bench target ${id} in bench/targets.mjs`);
  return found;
};
