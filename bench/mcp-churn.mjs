// @ts-check
// The MCP proxy's memory over many sessions: sessions opened, used once and closed through the vault,
// a few at a time, with the vault's memory after full collections sampled at the start, the middle
// and the end. A vault that kept anything per closed session (its transport, its upstream client, a
// map entry) grows with the count; one that does not stays flat.

import { callEcho, closeSession, mcpHeaders, openSession } from './mcp-sessions.mjs';
import { log, settings } from './settings.mjs';

const MiB = 2 ** 20;

/**
 * `count` sessions, `concurrency` at a time: `initialize`, `notifications/initialized`, one `tools/call`
 * of echo, `DELETE`.
 * @param {string} url @param {string} key @param {number} count @param {number} concurrency
 */
const cycle = async (url, key, count, concurrency) => {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      const { sessionId, version } = await openSession(url, { key });
      const headers = mcpHeaders({ key, sessionId, version });
      await callEcho(url, headers, 2);
      await closeSession(url, headers);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
};

/**
 * @param {{ vault: { call: (cmd: string, args?: unknown) => Promise<any> },
 *   upstreamCounts: () => Promise<{ initialize: number, deleted: number, held: number }>,
 *   url: string, key: string, total: number }} options
 */
export const churnSessions = async ({ vault, upstreamCounts, url, key, total }) => {
  const concurrency = 8;
  const sample = async () => {
    const m = await vault.call('memoryAfterGc');
    return {
      rssMiB: m.rss / MiB,
      heapUsedMiB: m.heapUsed / MiB,
      externalMiB: m.external / MiB,
      sessions: m.sessions,
    };
  };
  // Unmeasured first: the code paths compiled and the caches and pools at their working size.
  const warmup = Math.max(1, Math.min(500, Math.round(total / 10)));
  log(`mcp sessions: ${warmup} to warm up, then ${total} opened and closed (${concurrency} at a time)`);
  await cycle(url, key, warmup, concurrency);
  const before = await upstreamCounts();
  const started = performance.now();
  const samples = [await sample()];
  const half = Math.floor(total / 2);
  await cycle(url, key, half, concurrency);
  samples.push(await sample());
  log(`mcp sessions: ${half} of ${total}`);
  await cycle(url, key, total - half, concurrency);
  const seconds = (performance.now() - started) / 1000;
  samples.push(await sample());
  const after = await upstreamCounts();
  const first = samples[0];
  const last = samples.at(-1);
  return {
    total,
    warmup,
    concurrency,
    seconds,
    samples,
    heapGrowthMiB: (last?.heapUsedMiB ?? NaN) - (first?.heapUsedMiB ?? NaN),
    rssGrowthMiB: (last?.rssMiB ?? NaN) - (first?.rssMiB ?? NaN),
    sessionsLeft: last?.sessions,
    initializes: after.initialize - before.initialize,
    upstreamDeleted: after.deleted - before.deleted,
    upstreamHeld: after.held,
    smoke: settings.smoke,
  };
};
