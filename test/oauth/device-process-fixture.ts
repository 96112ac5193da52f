import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { cleanEnv, type ServerProcess, startServer } from '../helpers/cli.js';
import type { TestOAuthServer } from '../helpers/oauth-server.js';

/**
 * Real `tokenvault serve` processes (the built CLI: `npm run build` first) for the device-flow tests
 * that kill a vault or run two: the helpers they share to set one up and to ask as an agent.
 */

export const deviceGrant = 'urn:ietf:params:oauth:grant-type:device_code';

/** `tokenvault serve` on a data dir (and a database URL), allowed to reach the local provider over http. */
export const startVaultProcess = (
  dataDir: string,
  extra: { masterKey: string; databaseUrl?: string },
): Promise<ServerProcess> =>
  startServer(['--data-dir', dataDir, ...(extra.databaseUrl ? ['--database-url', extra.databaseUrl] : [])], {
    cwd: dataDir,
    env: cleanEnv({
      TOKENVAULT_MASTER_KEY: extra.masterKey,
      TOKENVAULT_LOG_LEVEL: 'warn',
      TOKENVAULT_OUTBOUND_ALLOW: '127.0.0.1',
      TOKENVAULT_OAUTH_ALLOW_HTTP: 'true',
    }),
  });

export const rootTokenOf = (dataDir: string) => readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();

export const call = async (base: string, token: string, method: string, path: string, body?: unknown) => {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

/** An OIDC app of the local provider that agents may connect through the device flow only, and an agent. */
export const setUpDeviceApp = async (base: string, rootToken: string, op: TestOAuthServer) => {
  const app = await call(base, rootToken, 'POST', '/v1/admin/oauth/apps', {
    provider: 'oidc',
    name: 'corp',
    issuer: op.issuer,
    client_id: op.client.client_id,
    client_secret: op.client.client_secret,
    scopes: ['openid', 'offline_access', 'api:read'],
    agent_connect_flows: ['device'],
  });
  expect(app.status, JSON.stringify(app.body)).toBe(201);
  expect(app.body).toMatchObject({ agent_connect: true, agent_connect_flows: ['device'] });
  const agent = await call(base, rootToken, 'POST', '/v1/admin/agents', { name: 'helper' });
  expect(agent.status).toBe(201);
  return agent.body.api_key as string;
};

/** The agent's retrieval of `corp` for `user`. */
export const askFor = (base: string, agentKey: string, user: string) =>
  call(base, agentKey, 'GET', `/v1/agents/helper/credentials/corp?user=${encodeURIComponent(user)}`);

/** Asks until the token comes (the user approved and a poll stored it), or the time is up. */
export const tokenOnceApproved = async (base: string, agentKey: string, user: string, timeoutMs: number) => {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const answer = await askFor(base, agentKey, user);
    if (answer.status === 200 || Date.now() > until) return answer;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
};

/** The polls the provider saw for one device code: never faster than `intervalMs`, never told slow_down. */
export const expectOnePollStream = (op: TestOAuthServer, deviceCode: string, intervalMs: number) => {
  const polls = op.devicePolls().filter((p) => p.deviceCode === deviceCode);
  expect(
    polls.some((p) => p.slowDown),
    'a poll came too fast',
  ).toBe(false);
  for (let i = 1; i < polls.length; i += 1) {
    expect(polls[i]!.at - polls[i - 1]!.at, `poll ${i} after the one before`).toBeGreaterThanOrEqual(
      intervalMs - 50,
    );
  }
  return polls;
};
