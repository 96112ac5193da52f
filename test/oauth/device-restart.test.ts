import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerProcess } from '../helpers/cli.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
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
 * Issue 13: device polls survive a restart. An agent's request starts a device flow; the vault
 * process is killed with SIGKILL while it polls; a new process on the same database resumes polling
 * (the device code is sealed in the store, the schedule and lease in `device_polls`); the user
 * approves at the provider; the token is stored and the same retrieval returns it. The interval
 * holds across the restart: the provider never sees a poll too early.
 */
describe('device flow across a SIGKILL', () => {
  let op: TestOAuthServer;
  let dir: TempDataDir;
  let vault: ServerProcess | undefined;
  const masterKey = randomBytes(32).toString('base64');

  beforeAll(async () => {
    op = await startOAuthServer({ deviceInterval: 1 });
    dir = await createTempDataDir();
  });
  afterAll(async () => {
    await vault?.stop();
    await dir?.cleanup();
    await op?.stop();
  });

  it('resumes polling in the restarted process and stores the token once the user approves', async () => {
    vault = await startVaultProcess(dir.dir, { masterKey });
    const rootToken = rootTokenOf(dir.dir);
    const agentKey = await setUpDeviceApp(vault.url, rootToken, op);

    const asked = await askFor(vault.url, agentKey, 'hana');
    expect(asked.status).toBe(403);
    const error = asked.body.error as { code: string; user_code: string };
    expect(error.code).toBe('authorization_required');
    const [deviceCode] = op.deviceCodes();

    // Let the first process poll a few times, then kill it without a chance to clean up.
    const polled = async (n: number) => {
      while (op.devicePolls().filter((p) => p.deviceCode === deviceCode).length < n) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    await polled(2);
    expect(await vault.stop('SIGKILL')).toBeNull();
    const pollsBeforeKill = op.devicePolls().length;

    vault = await startVaultProcess(dir.dir, { masterKey });
    // The new process picks the flow up by itself: nobody asks it anything first.
    await polled(pollsBeforeKill + 1);
    const page = await op.browser({ account: 'hana' }).approveDevice(error.user_code);
    expect(page.status).toBe(200);

    const answer = await tokenOnceApproved(vault.url, agentKey, 'hana', 20_000);
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(await op.introspect(answer.body.access_token as string)).toMatchObject({
      active: true,
      sub: 'hana',
    });
    expect(op.tokenSuccesses(deviceGrant)).toBe(1);
    expectOnePollStream(op, deviceCode!, 1000);
  }, 60_000);
});
