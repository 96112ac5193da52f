import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import {
  admin,
  audience,
  codeOf,
  type CreatedAgent,
  createAgent,
  newSigningKey,
  type SigningKey,
  signAssertion,
  startAuthProbe,
} from './agent-fixtures.js';

type Probe = Awaited<ReturnType<typeof startAuthProbe>>;

/**
 * Two vault replicas on one PostgreSQL database: a JWT id is single-use across both (even when the
 * same assertion reaches both at once), and a revocation on one holds on the other's next request.
 */
describePostgres('agent authentication across two replicas', () => {
  const clock = fixedClock('2026-06-01T12:00:00Z');
  let database: TestDatabase;
  const dirs: TempDataDir[] = [];
  const replicas: TestVault[] = [];
  const probes: Probe[] = [];
  let agent: CreatedAgent;
  let key: SigningKey;

  beforeAll(async () => {
    database = await createTestDatabase();
    const masterKey = randomBytes(32).toString('base64');
    for (let i = 0; i < 2; i += 1) {
      const dir = await createTempDataDir();
      dirs.push(dir);
      // Only the first start writes the root token; the second replica's admin uses the same one.
      if (i > 0) writeFileSync(join(dir.dir, 'admin-token'), replicas[0]!.rootToken, { mode: 0o600 });
      const vault = await startTestVault({
        dataDir: dir.dir,
        databaseUrl: database.url,
        clock,
        settings: { audience, masterKey },
      });
      replicas.push(vault);
      probes.push(await startAuthProbe(vault, clock));
    }
    agent = await createAgent(replicas[0]!, 'agent-42');
    key = await newSigningKey();
    const set = await admin(replicas[0]!, 'PUT', '/v1/admin/agents/agent-42/jwks', { jwks: key.publicJwk });
    expect(set.status, set.text).toBe(200);
  });

  afterAll(async () => {
    for (const probe of probes) await probe.app.close();
    for (const vault of replicas) await vault.stop();
    for (const dir of dirs) await dir.cleanup();
    await database?.drop();
  });

  const [a, b] = [0, 1] as const;

  it('refuses on one replica an assertion already used on the other', async () => {
    const token = await signAssertion(key, { agentId: agent.id, now: clock.now() });
    expect((await probes[a]!.whoami(token)).status).toBe(200);
    const replayed = await probes[b]!.whoami(token);
    expect([replayed.status, codeOf(replayed.body)]).toEqual([401, 'jwt_replayed']);
  });

  it('lets exactly one of two simultaneous uses through', async () => {
    for (let round = 0; round < 5; round += 1) {
      const token = await signAssertion(key, { agentId: agent.id, now: clock.now() });
      const answers = await Promise.all([probes[a]!.whoami(token), probes[b]!.whoami(token)]);
      expect(answers.map((answer) => answer.status).sort()).toEqual([200, 401]);
      expect(answers.map((answer) => codeOf(answer.body)).filter(Boolean)).toEqual(['jwt_replayed']);
    }
  });

  it('holds a key revocation and a disable made on one replica on the other’s next request', async () => {
    expect((await probes[b]!.whoami(agent.api_key)).status).toBe(200);
    await admin(replicas[a]!, 'DELETE', `/v1/admin/agents/agent-42/keys/${agent.key_id}`);
    const revoked = await probes[b]!.whoami(agent.api_key);
    expect([revoked.status, codeOf(revoked.body)]).toEqual([401, 'agent_key_revoked']);
    await admin(replicas[a]!, 'POST', '/v1/admin/agents/agent-42/disable');
    const token = await signAssertion(key, { agentId: agent.id, now: clock.now() });
    const disabled = await probes[b]!.whoami(token);
    expect([disabled.status, codeOf(disabled.body)]).toEqual([403, 'agent_disabled']);
  });
});
