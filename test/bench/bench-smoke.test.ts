import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { targets } from '../../bench/targets.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface SavedVerdict {
  target: string;
  subject: string;
  value: number;
  met: boolean | null;
}

/**
 * `npm run bench` with tiny counts and quarter-second runs (BENCH_SMOKE=1): every section must still run,
 * report its figures and judge them against every target, so the bench cannot rot between the runs
 * someone makes on purpose. Nothing here is about speed: the machine may be busy with anything.
 * PostgreSQL only when the PostgreSQL suites run too.
 */
describe('npm run bench, smoke pass', () => {
  let dir: string;
  let output = '';
  let saved: Record<string, unknown> & { verdicts: SavedVerdict[] };
  const pgUrl = process.env.TOKENVAULT_TEST_DATABASE_URL;

  beforeAll(async () => {
    dir = await mkdtemp(join(os.tmpdir(), 'tokenvault-bench-smoke-'));
    const resultsFile = join(dir, 'results.json');
    output = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['bench/run.mjs'],
        {
          cwd: root,
          env: {
            ...process.env,
            BENCH_SMOKE: '1',
            BENCH_RESULTS: resultsFile,
            BENCH_POSTGRES: pgUrl ? '1' : '0',
            ...(pgUrl ? { TOKENVAULT_BENCH_DATABASE_URL: pgUrl } : {}),
          },
          maxBuffer: 16 * 1024 * 1024,
          timeout: 170_000,
        },
        (error, stdout, stderr) =>
          error ? reject(new Error(`${error.message}\n${stdout}\n${stderr}`)) : resolve(stdout),
      );
    });
    saved = JSON.parse(await readFile(resultsFile, 'utf8')) as typeof saved;
  }, 180_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs every section and saves its figures', () => {
    expect(saved).toMatchObject({
      admin: {
        runs: expect.any(Array),
        sequential: expect.arrayContaining([expect.objectContaining({ store: 'sqlite' })]),
      },
      retrieval: {
        full: expect.any(Array),
        wide: expect.any(Array),
        halfRate: expect.any(Array),
        loggingCost: expect.any(Array),
      },
      rewrap: expect.arrayContaining([
        // 50 seeded keys and the vault's audit chain key.
        expect.objectContaining({ store: 'sqlite', done: 51, verify: expect.objectContaining({ ok: true }) }),
      ]),
      audit: expect.objectContaining({ events: 200 }),
      proxy: expect.objectContaining({
        direct: expect.objectContaining({ runs: 1 }),
        proxy: expect.objectContaining({ runs: 1 }),
        auditGaps: 0,
        // BENCH_PROXY_BODY_MB's smoke default, streamed each way.
        body: expect.objectContaining({ mb: 4 }),
      }),
      'mcp-proxy': expect.objectContaining({
        direct: expect.objectContaining({ runs: 1 }),
        proxy: expect.objectContaining({ runs: 1 }),
        stateless: expect.objectContaining({ runs: 1 }),
        auditGaps: 0,
        callGaps: 0,
        // One upstream `initialize` per session, none per call; BENCH_MCP_SESSIONS's smoke default.
        churn: expect.objectContaining({ total: 20, initializes: 20 }),
      }),
      // Every credential of the window refreshed at the local OAuth server, each request answered 200.
      'oauth-refresh': expect.objectContaining({
        window: expect.objectContaining({ count: 40, refreshed: 40, providerSuccesses: 40, failures: 0 }),
        idle: expect.objectContaining({ small: expect.objectContaining({ states: 100 }) }),
      }),
    });
    const mcp = saved['mcp-proxy'] as { initializes: number; sessionsOpened: number; proxy: { rps: number } };
    expect(mcp.initializes).toBe(mcp.sessionsOpened);
    expect(mcp.proxy.rps).toBeGreaterThan(0);
    const proxied = saved.proxy as { proxy: { rps: number }; direct: { rps: number } };
    expect(proxied.proxy.rps).toBeGreaterThan(0);
    expect(proxied.direct.rps).toBeGreaterThan(0);
    const servers = (saved.retrieval as { full: { server: string; requests: number }[] }).full;
    expect(servers.map((s) => s.server)).toEqual(
      expect.arrayContaining(['node:http', 'fastify', 'vault/sqlite', 'vault/sqlite (logging off)']),
    );
    for (const s of servers) expect(s.requests, s.server).toBeGreaterThan(0);
    if (pgUrl) {
      expect(servers.map((s) => s.server)).toContain('vault/postgres');
      expect(saved.rewrap).toContainEqual(expect.objectContaining({ store: 'postgres', done: 51 }));
    }
  });

  it('judges every target, with a figure for each', () => {
    expect([...new Set(saved.verdicts.map((v) => v.target))].sort()).toEqual(targets.map((t) => t.id).sort());
    for (const v of saved.verdicts) {
      expect(Number.isFinite(v.value), `${v.target} ${v.subject}: ${v.value}`).toBe(true);
    }
    // The too-small runs say so rather than passing or failing.
    expect(saved.verdicts.find((v) => v.target === 'rewrap-100k')).not.toHaveProperty('met');
  });

  it('prints the tables and one line per verdict', () => {
    expect(output).toContain('Agent retrieval at full speed');
    expect(output).toContain('HTTP proxy vs the upstream directly');
    expect(output).toContain('MCP proxy vs the upstream directly');
    expect(output).toContain('OAuth refresh: due in one window');
    expect(output).toContain('Targets (bench/targets.mjs)');
    const lines = output.split('\n').filter((l) => /: (met|NOT met|n\/a)/.test(l));
    expect(lines).toHaveLength(saved.verdicts.length);
  });
});
