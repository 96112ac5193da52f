// @ts-check
// The bench's settings, read once from the environment (docs/benchmarks.md lists them), and the
// resources every section shares: the log, temp dirs, and what must be cleaned up even on failure.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killChildren } from './children.mjs';

/** @typedef {'admin' | 'retrieval' | 'rewrap' | 'audit' | 'proxy' | 'policies' | 'oauth-refresh' | 'mcp-proxy'} SectionName */

/** @type {SectionName[]} */
export const allSections = [
  'admin',
  'retrieval',
  'rewrap',
  'audit',
  'proxy',
  'policies',
  'oauth-refresh',
  'mcp-proxy',
];

/**
 * `BENCH_SMOKE=1`: tiny counts and quarter-second runs, so every section runs in seconds and the bench
 * cannot rot unnoticed (test/bench/bench-smoke.test.ts). Its figures mean nothing; explicit
 * variables still win.
 */
const smoke = process.env.BENCH_SMOKE === '1';

/**
 * A positive number from the environment, or the default (the smoke default in a smoke run).
 * @param {string} name
 * @param {number} fallback
 * @param {number} [smokeFallback]
 */
const positive = (name, fallback, smokeFallback = fallback) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return smoke ? smokeFallback : fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
};

/** @returns {SectionName[]} */
const chosenSections = () => {
  const raw = process.env.BENCH_ONLY;
  if (!raw) return allSections;
  const chosen = raw.split(',').map((s) => s.trim());
  const unknown = chosen.filter((s) => !(/** @type {string[]} */ (allSections).includes(s)));
  if (unknown.length > 0 || chosen.length === 0) {
    throw new Error(`BENCH_ONLY takes a comma-separated list of ${allSections.join(', ')}`);
  }
  return /** @type {SectionName[]} */ (chosen);
};

const duration = positive('BENCH_DURATION', 10, 0.25);

export const settings = {
  smoke,
  sections: chosenSections(),
  duration,
  rounds: Math.round(positive('BENCH_ROUNDS', 3, 1)),
  connections: Math.round(positive('BENCH_CONNECTIONS', 10, 2)),
  // The second set of full-speed retrieval runs, with as many connections as an agent fleet might
  // open: where the framework's per-request cost, not the round trip, sets the rate.
  wideConnections:
    process.env.BENCH_WIDE_CONNECTIONS === '0' ? 0 : Math.round(positive('BENCH_WIDE_CONNECTIONS', 64, 4)),
  rewrapCount: Math.round(positive('BENCH_REWRAP_COUNT', 100_000, 50)),
  readTargets: Math.round(positive('BENCH_READ_TARGETS', 10_000, 20)),
  retrievalTargets: Math.round(positive('BENCH_RETRIEVAL_TARGETS', 10_000, 20)),
  auditEvents: Math.round(positive('BENCH_AUDIT_EVENTS', 1_000_000, 200)),
  // The body streamed each way through the HTTP proxy (MB) while the vault's peak memory is watched.
  proxyBodyMb: Math.round(positive('BENCH_PROXY_BODY_MB', 100, 4)),
  // Sessions opened and closed through the MCP proxy while the vault's memory is watched.
  mcpSessions: Math.round(positive('BENCH_MCP_SESSIONS', 10_000, 20)),
  // The oauth-refresh section: credentials due within one window (their refresh tokens minted by the
  // local OAuth server), the sizes the scheduler's pass with nothing due is measured at, and the
  // refreshes a second run beside retrieval.
  oauthRefreshCount: Math.round(positive('BENCH_OAUTH_REFRESH_COUNT', 10_000, 40)),
  oauthRefreshWindow: positive('BENCH_OAUTH_REFRESH_WINDOW', 600, 3),
  oauthIdleSmall: Math.round(positive('BENCH_OAUTH_IDLE_SMALL', 1000, 100)),
  oauthIdleLarge: Math.round(positive('BENCH_OAUTH_IDLE_LARGE', 100_000, 400)),
  oauthRefreshRate: positive('BENCH_OAUTH_REFRESH_RATE', 100, 10),
  postgres: process.env.BENCH_POSTGRES !== '0',
  profileDir: process.env.BENCH_CPU_PROF || undefined,
  heapProfileDir: process.env.BENCH_HEAP_PROF || undefined,
  // The half-rate runs with autocannon's overallRate, beside the paced ones (BENCH_QUOTA_RUNS=0: not).
  quotaRuns: process.env.BENCH_QUOTA_RUNS !== '0',
  // The retrieval runs also measure the SQLite vault with logging off, beside the default
  // configuration (BENCH_LOG_OFF_RUNS=0: not).
  logOffRuns: process.env.BENCH_LOG_OFF_RUNS !== '0',
  sequentialReads: smoke ? 20 : 2000,
  sequentialRetrievals: smoke ? 20 : 1000,
  // A fifth of a run, 1 to 3 s (a smoke run: none).
  warmup: smoke ? 0 : Math.min(3, Math.max(1, Math.round(duration / 5))),
  // How long the machine is watched before the start, to warn when it is already busy.
  idleCheckMs: smoke ? 100 : 2000,
  /** Where the JSON results go (a smoke run does not overwrite a real run's). */
  resultsFile: process.env.BENCH_RESULTS
    ? resolve(process.env.BENCH_RESULTS)
    : fileURLToPath(new URL(`results/${smoke ? 'smoke' : 'latest'}.json`, import.meta.url)),
};

/** @typedef {typeof settings} Settings */

/** @param {string} text */
export const log = (text) => console.log(`[bench] ${text}`);

/** @type {string[]} */
const tempDirs = [];
/** @type {(() => Promise<void>)[]} */
const cleanups = [];

/** A fresh temp dir, deleted by `cleanup()`. */
export const tempDir = () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'tokenvault-bench-'));
  tempDirs.push(dir);
  return dir;
};

/**
 * Something `cleanup()` must undo (stop the PostgreSQL server, …).
 * @param {() => Promise<void>} undo
 */
export const onCleanup = (undo) => {
  cleanups.push(undo);
};

/** Kills the child processes, deletes the temp dirs, runs the registered undos. Safe to call twice. */
export const cleanup = async () => {
  killChildren();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const undo of cleanups.splice(0).reverse()) await undo().catch(() => {});
};
