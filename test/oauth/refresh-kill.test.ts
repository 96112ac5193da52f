import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv } from '../helpers/cli.js';
import { startOAuthServer, type TestOAuthServer } from '../helpers/oauth-server.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { connect, startCallbackServer } from './refresh-fixture.js';
import { type RefreshReplica, startRefreshReplica } from './refresh-replica.js';

/**
 * Issue 13: a vault process killed with SIGKILL at random points during a stream of refreshes loses
 * no credential except, at most, the one whose refresh response was in flight at the kill (the
 * provider rotated its refresh token, the answer never reached the database). The stream is one
 * refresh at a time, so each kill may lose at most one. `REFRESH_KILLS` sets how many kills (5 by
 * default here; `REFRESH_KILLS=100 npx vitest run test/oauth/refresh-kill.test.ts` for the full run,
 * whose result is recorded in docs/oauth.md).
 */

const kills = Number(process.env.REFRESH_KILLS ?? 5);
const credentialCount = 8;

describe('SIGKILL during a stream of refreshes', () => {
  let op: TestOAuthServer;
  let callback: Awaited<ReturnType<typeof startCallbackServer>>;
  let dir: TempDataDir;
  let env: NodeJS.ProcessEnv;
  let vault: RefreshReplica;
  let rootToken: string;

  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${vault.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${rootToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return {
      status: response.status,
      body: (await response.json().catch(() => ({}))) as Record<string, unknown>,
    };
  };

  beforeAll(async () => {
    callback = await startCallbackServer();
    op = await startOAuthServer({ accessTokenTtl: 3600, redirectUris: [callback.url] });
    dir = await createTempDataDir();
    env = cleanEnv({
      TOKENVAULT_MASTER_KEY: randomBytes(32).toString('base64'),
      TOKENVAULT_LOG_LEVEL: 'warn',
      TOKENVAULT_OUTBOUND_ALLOW: '127.0.0.1',
      VAULT_DATA_DIR: dir.dir,
      OAUTH_ISSUER: op.issuer,
      OAUTH_CLIENT_ID: op.client.client_id,
      OAUTH_CLIENT_SECRET: op.client.client_secret,
      REFRESH_POLL_MS: '3600000',
      REFRESH_ADOPT_MS: '3600000',
      // A dead holder's lease runs out this soon (30 s by default).
      REFRESH_LEASE_MS: '2000',
    });
    vault = await startRefreshReplica(env);
    rootToken = readFileSync(join(dir.dir, 'admin-token'), 'utf8').trim();
    for (let i = 0; i < credentialCount; i += 1) {
      const created = await call('POST', '/v1/admin/credentials', {
        name: `c${i}`,
        type: 'oauth2',
        secret: await connect(op, callback.url, `user${i}`),
      });
      expect(created.status).toBe(201);
    }
  }, 60_000);
  afterAll(async () => {
    await vault?.stop();
    await dir?.cleanup();
    await op?.stop();
    await callback?.stop();
  });

  it(`loses at most the credential in flight at each of ${kills} kills`, async () => {
    const lostPerKill: number[] = [];
    let completed = 0;
    let generation = 0;
    for (let kill = 0; kill < kills; kill += 1) {
      // The stream: one forced refresh after another, round the credentials, until the kill.
      let running = true;
      const stream = (async () => {
        for (let i = 0; running; i += 1) {
          const answer = await call('POST', `/v1/admin/credentials/c${i % credentialCount}/refresh`).catch(
            () => undefined,
          );
          if (!answer) return;
          if (answer.status === 200) completed += 1;
        }
      })();
      await sleep(100 + Math.random() * 400);
      await vault.kill();
      running = false;
      await stream;
      vault = await startRefreshReplica(env);

      // Which credentials still refresh: a lost one's stored refresh token was already rotated away.
      let lost = 0;
      for (let i = 0; i < credentialCount; i += 1) {
        const answer = await call('POST', `/v1/admin/credentials/c${i}/refresh`);
        if (answer.status === 200 && answer.body.outcome === 'refreshed') continue;
        expect(answer.body.outcome ?? (answer.body.error as { code: string }).code).toMatch(/needs_reauth/);
        lost += 1;
        // Reconnected, so the next round starts whole again.
        generation += 1;
        const updated = await call('PATCH', `/v1/admin/credentials/c${i}`, {
          secret: await connect(op, callback.url, `user${i}-${generation}`),
          status: 'active',
        });
        expect(updated.status).toBe(200);
      }
      lostPerKill.push(lost);
    }
    const lost = lostPerKill.reduce((a, b) => a + b, 0);
    console.log(
      `refresh kills: ${kills}, refreshes completed: ${completed}, credentials lost: ${lost} (${JSON.stringify(lostPerKill)})`,
    );
    expect(completed).toBeGreaterThan(kills);
    for (const count of lostPerKill) expect(count).toBeLessThanOrEqual(1);
  }, 1_200_000);
});
