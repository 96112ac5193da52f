// @ts-check
// Section `policies` (issue 15): retrieval with three policies attached to the agent (a time window,
// an IP allowlist, a rate limit set high) against retrieval with none, on one SQLite vault, in the same
// rounds and the same process, so the machine's load falls on both alike. Two agents with the same
// grants; one has the policies. Every request of both must be answered 200: a refusal would be cheaper
// than an answer and flatter the figure.

import { openSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../children.mjs';
import { runLoad } from '../load.mjs';
import { median } from '../measure.mjs';
import { log, settings, tempDir } from '../settings.mjs';
import { judge } from '../verdicts.mjs';

/** The three policies, as an operator would write them; each passes every request of the run. */
const policies = [
  "name: always-open\nrules:\n  - time_window: { start: '00:00', end: '24:00', time_zone: Europe/Berlin }\n",
  "name: loopback-only\nrules:\n  - ip_allowlist: { cidrs: [127.0.0.0/8, '::1'] }\n",
  'name: generous-rate\nrules:\n  - rate_limit: { requests: 1000000000, per: 1m }\n',
];

/**
 * @param {{ url: string, token: string }} server
 * @param {string} method
 * @param {string} path
 * @param {unknown} body
 */
const admin = async (server, method, path, body) => {
  const response = await fetch(new URL(path, server.url), {
    method,
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status >= 300)
    throw new Error(`${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
};

/** What an agent sends: a credential picked at random among those it was granted. */
const requestsOf = (access, count) => (req) => ({
  ...req,
  method: 'GET',
  path: `/v1/agents/${access.agentId}/credentials/read-${Math.floor(Math.random() * count)}`,
  headers: { authorization: `Bearer ${access.apiKey}` },
});

const benchPolicies = async () => {
  const dataDir = tempDir();
  const server = await startServer(
    'vault',
    { BENCH_DATA_DIR: dataDir },
    { stdout: openSync(join(dataDir, 'vault.log'), 'a') },
  );
  try {
    const count = Math.min(settings.retrievalTargets, 1000);
    log(`policies: seeding ${count} credentials, two agents granted all of them`);
    await server.call('seed', { count, prefix: 'read-' });
    const setup = (agentName) =>
      server.call('setupRetrieval', { targets: count, prefix: 'read-', agentName });
    const plain = await setup('bench-plain');
    const guarded = await setup('bench-guarded');
    for (const document of policies) {
      const created = await admin(server, 'POST', '/v1/admin/policies', { document });
      await admin(server, 'POST', `/v1/admin/policies/${created.name}/attach`, {
        kind: 'agent',
        target: guarded.agentName,
      });
    }
    const agents = [
      { label: 'no policy', access: plain },
      { label: 'three policies', access: guarded },
    ];
    const run = (agent, duration = settings.duration) =>
      runLoad({
        url: server.url,
        connections: settings.connections,
        duration,
        setupRequest: requestsOf(agent.access, count),
      });
    for (const agent of settings.warmup > 0 ? agents : []) {
      log(`policies: warm-up, ${agent.label} (${settings.warmup} s)`);
      await run(agent, settings.warmup);
    }
    /** @type {{ 'no policy': any[], 'three policies': any[] }} */
    const samples = { 'no policy': [], 'three policies': [] };
    for (let round = 1; round <= settings.rounds; round++) {
      // Alternate which goes first, so neither always meets a machine the other just warmed or loaded.
      for (const agent of round % 2 === 1 ? agents : [...agents].reverse()) {
        log(`round ${round}/${settings.rounds}: retrieval, ${agent.label}`);
        const result = await run(agent);
        if (result.ok !== result.requests || result.errors > 0) {
          throw new Error(
            `policies: ${agent.label}: ${result.requests - result.ok} of ${result.requests} requests not answered 200 (${JSON.stringify(result.statuses)})`,
          );
        }
        samples[/** @type {'no policy' | 'three policies'} */ (agent.label)].push(result);
      }
    }
    /** @param {'no policy' | 'three policies'} label */
    const summary = (label) => ({
      label,
      rps: median(samples[label].map((r) => r.rps)),
      p50Ms: median(samples[label].map((r) => r.latencyMs.p50)),
      p99Ms: median(samples[label].map((r) => r.latencyMs.p99)),
      rounds: samples[label].map((r) => Math.round(r.rps)),
    });
    const none = summary('no policy');
    const three = summary('three policies');
    const ratios = samples['no policy'].map((r, i) => (samples['three policies'][i].rps / r.rps) * 100);
    // The figure is the median of the rounds' paired ratios: the two runs of a round are seconds apart,
    // so a swing of the machine's load between rounds (tenfold here, shared with other work) moves
    // both; the ratio of the medians is reported beside it.
    return {
      credentials: count,
      none,
      three,
      percent: median(ratios),
      ofMedians: (three.rps / none.rps) * 100,
      perRound: ratios,
    };
  } finally {
    await server.stop();
  }
};

/** @typedef {Awaited<ReturnType<typeof benchPolicies>>} PoliciesResult */

/** @param {PoliciesResult} r */
const verdicts = (r) => [
  judge('policies-vs-none', {
    subject: `sqlite, ${settings.connections} connections`,
    value: r.percent,
    detail: `median of per-round ratios ${r.perRound.map((p) => `${p.toFixed(0)} %`).join(', ')}; medians ${Math.round(r.three.rps)} vs ${Math.round(r.none.rps)} req/s (${r.ofMedians.toFixed(1)} %)`,
  }),
];

/**
 * @param {PoliciesResult} r
 * @returns {[string, string][]}
 */
const report = (r) => {
  const rows = [r.none, r.three].map((s) => [
    s.label,
    String(Math.round(s.rps)),
    s.p50Ms.toFixed(2),
    s.p99Ms.toFixed(2),
    s.rounds.join(' / '),
  ]);
  const headers = ['agent', 'req/s (median)', 'p50 ms', 'p99 ms', 'req/s per round'];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  const table = [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
  return [
    [
      `retrieval with three policies against none, SQLite: ${r.percent.toFixed(1)} % (median of the rounds' ratios)`,
      table,
    ],
  ];
};

/** @type {import('./section.mjs').Section<object, PoliciesResult>} */
export const policiesSection = { name: 'policies', run: () => benchPolicies(), verdicts, report };
