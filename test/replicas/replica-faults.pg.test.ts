import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cleanEnv, type ServerProcess, startServer } from '../helpers/cli.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

/**
 * Two vault processes on one PostgreSQL database, each under retrieval load. A replica that stops
 * (SIGSTOP: a GC pause, a frozen VM, a partition) or dies (SIGKILL) in the middle of its audit
 * appends must not stop the other: no replica holds the audit chain across a round trip to itself.
 */

const pauseMs = 3000;
/** The slowest answer the healthy replica may give while the other is paused or killed. */
const slowestMs = 2500;

interface Load {
  /** Stops the load and resolves with what it saw. */
  stop(): Promise<{ answered: number; failed: string[]; slowestMs: number }>;
}

/** `concurrency` loops of retrievals against one replica, each timing its own requests. */
const startLoad = (url: string, apiKey: string, concurrency: number): Load => {
  let running = true;
  let answered = 0;
  let slowest = 0;
  const failed: string[] = [];
  const loop = async () => {
    while (running) {
      const started = performance.now();
      try {
        const response = await fetch(`${url}/v1/agents/agent-42/credentials/slack`, {
          headers: { authorization: `Bearer ${apiKey}` },
        });
        await response.arrayBuffer();
        if (response.status === 200) answered += 1;
        else failed.push(String(response.status));
      } catch (error) {
        // The replica under test was killed: its requests fail, the healthy one's must not.
        failed.push((error as Error).message);
        if (!running) return;
        await sleep(20);
      }
      slowest = Math.max(slowest, performance.now() - started);
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { answered, failed, slowestMs: Math.round(slowest) };
    },
  };
};

describePostgres('replicas under faults', () => {
  let database: TestDatabase;
  const dirs: TempDataDir[] = [];
  const servers: ServerProcess[] = [];
  let env: NodeJS.ProcessEnv;
  let rootToken: string;
  let apiKey: string;

  const admin = async (url: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${rootToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    expect(response.status, text).toBeLessThan(300);
    return JSON.parse(text) as Record<string, unknown>;
  };

  const startReplica = async () => {
    const dir = await createTempDataDir();
    dirs.push(dir);
    const server = await startServer(['--data-dir', dir.dir, '--database-url', database.url], {
      cwd: dir.dir,
      env,
    });
    servers.push(server);
    return { server, dir: dir.dir };
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    env = cleanEnv({
      TOKENVAULT_MASTER_KEY: randomBytes(32).toString('base64'),
      TOKENVAULT_LOG_LEVEL: 'warn',
    });
    const first = await startReplica();
    rootToken = readFileSync(join(first.dir, 'admin-token'), 'utf8').trim();
    await startReplica();
    const url = first.server.url;
    await admin(url, 'POST', '/v1/admin/credentials', {
      name: 'slack',
      type: 'api_key',
      secret: { api_key: 'xoxb-faults' },
    });
    apiKey = (await admin(url, 'POST', '/v1/admin/agents', { name: 'agent-42' })).api_key as string;
    await admin(url, 'POST', '/v1/admin/grants', {
      agent: 'agent-42',
      credential: 'slack',
      ttl: '24h',
      reveal: true,
    });
  }, 60_000);

  afterAll(async () => {
    for (const server of servers) {
      server.child.kill('SIGCONT');
      await server.stop('SIGKILL');
    }
    for (const dir of dirs) await dir.cleanup();
    await database?.drop();
  });

  it('keeps answering on one replica while the other is paused mid-traffic (SIGSTOP, 3 s)', async () => {
    const [a, b] = servers as [ServerProcess, ServerProcess];
    for (let trial = 0; trial < 3; trial += 1) {
      const onB = startLoad(b.url, apiKey, 8);
      const onA = startLoad(a.url, apiKey, 4);
      await sleep(400);
      b.child.kill('SIGSTOP');
      await sleep(pauseMs);
      const healthy = await onA.stop();
      b.child.kill('SIGCONT');
      const paused = await onB.stop();
      expect(healthy.failed, `trial ${trial}`).toEqual([]);
      expect(healthy.slowestMs, `trial ${trial}: slowest answer on the healthy replica`).toBeLessThan(
        slowestMs,
      );
      // About 3.4 s of load: far more than the handful a frozen chain let through.
      expect(healthy.answered, `trial ${trial}`).toBeGreaterThan(100);
      expect(paused.failed, `trial ${trial}`).toEqual([]);
    }
  }, 60_000);

  it('keeps answering when the other replica is killed inside an audit append burst, and the chain verifies', async () => {
    const [a, b] = servers as [ServerProcess, ServerProcess];
    const onB = startLoad(b.url, apiKey, 16);
    const onA = startLoad(a.url, apiKey, 4);
    await sleep(500);
    await b.stop('SIGKILL');
    await sleep(1500);
    const healthy = await onA.stop();
    const killed = await onB.stop();
    expect(killed.failed.length).toBeGreaterThan(0);
    expect(healthy.failed).toEqual([]);
    expect(healthy.slowestMs).toBeLessThan(slowestMs);
    expect(healthy.answered).toBeGreaterThan(50);

    const verify = await admin(a.url, 'POST', '/v1/admin/audit/verify');
    expect(verify.ok, JSON.stringify(verify)).toBe(true);
    expect(verify.checked).toBeGreaterThan(healthy.answered);
  }, 60_000);
});
