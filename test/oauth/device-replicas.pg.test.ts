import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ServerProcess } from '../helpers/cli.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import {
  askFor,
  deviceGrant,
  expectOnePollStream,
  rootTokenOf,
  setUpDeviceApp,
  startVaultProcess,
  tokenOnceApproved,
} from './device-process-fixture.js';

/**
 * Issue 13: with several replicas, at most one process polls a given device code at a time. Two
 * vault processes on one PostgreSQL database, both running the device-flow poller; device flows
 * started through either. Counted at the provider: for each device code one poll stream at the
 * provider's interval (two pollers without the database lease would each poll every code, twice as
 * often, and the provider would answer `slow_down`).
 */
describePostgres('device polls across two vault processes', () => {
  let database: TestDatabase;
  let op: TestOAuthServer;
  const dirs: TempDataDir[] = [];
  const vaults: ServerProcess[] = [];
  const masterKey = randomBytes(32).toString('base64');
  const intervalSeconds = 1;

  beforeAll(async () => {
    database = await createTestDatabase();
    op = await startOAuthServer({ deviceInterval: intervalSeconds });
    for (let i = 0; i < 2; i += 1) {
      const dir = await createTempDataDir();
      dirs.push(dir);
      vaults.push(await startVaultProcess(dir.dir, { masterKey, databaseUrl: database.url }));
    }
  }, 60_000);
  afterAll(async () => {
    for (const vault of vaults) await vault.stop();
    for (const dir of dirs) await dir.cleanup();
    await op?.stop();
    await database?.drop();
  });

  it('polls each device code from one process at a time, at the interval', async () => {
    const [a, b] = vaults as [ServerProcess, ServerProcess];
    const agentKey = await setUpDeviceApp(a.url, rootTokenOf(dirs[0]!.dir), op);
    const users = ['u0', 'u1', 'u2', 'u3'];
    const userCodes = new Map<string, string>();
    for (const [i, user] of users.entries()) {
      const asked = await askFor(i % 2 ? b.url : a.url, agentKey, user);
      expect(asked.status).toBe(403);
      userCodes.set(user, (asked.body.error as { user_code: string }).user_code);
    }
    const codes = op.deviceCodes();
    expect(codes).toHaveLength(users.length);
    const started = Date.now();

    await new Promise((resolve) => setTimeout(resolve, 6000));
    const watchedMs = Date.now() - started;
    for (const code of codes) {
      const polls = expectOnePollStream(op, code, intervalSeconds * 1000);
      // Polled all along (one stream), and not more often than one stream can.
      expect(polls.length).toBeGreaterThanOrEqual(3);
      expect(polls.length).toBeLessThanOrEqual(Math.floor(watchedMs / (intervalSeconds * 1000)) + 1);
    }

    // Approve one user; whichever process polls next stores the token, and either serves it.
    await op.browser({ account: 'u1' }).approveDevice(userCodes.get('u1')!);
    const answer = await tokenOnceApproved(a.url, agentKey, 'u1', 15_000);
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(await op.introspect(answer.body.access_token as string)).toMatchObject({ sub: 'u1' });
    expect((await askFor(b.url, agentKey, 'u1')).status).toBe(200);
    expect(op.tokenSuccesses(deviceGrant)).toBe(1);
    for (const code of codes) expectOnePollStream(op, code, intervalSeconds * 1000);
  }, 60_000);
});
