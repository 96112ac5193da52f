import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { GrantView } from '../../src/http/schemas/response-types.js';
import { importBatchSize } from '../../src/grants/grant-import.js';
import { startTestVault, type TestVault, type TestVaultOptions } from '../helpers/vault.js';
import { addAgent, addCredential, errorOf } from '../retrieval/retrieval-fixtures.js';

export const bulkAgents = 50;
export const bulkCredentials = 100;
/** 50 agents × 100 credentials: 5,000 grants in one import. */
export const bulkGrants = bulkAgents * bulkCredentials;

export const bulkDocument = (agents = bulkAgents) =>
  Array.from({ length: agents }, (_, a) => ({
    agent_id: `bulk-agent-${a}`,
    allowed_credentials: Array.from({ length: bulkCredentials }, (_, c) => `bulk-cred-${c}:read`),
  }));

/** A vault holding the agents and credentials the bulk document names, and nothing else granted. */
export const startBulkVault = async (options: TestVaultOptions = {}) => {
  const t = await startTestVault(options);
  for (let c = 0; c < bulkCredentials; c += 1) {
    await addCredential(t, {
      name: `bulk-cred-${c}`,
      type: 'api_key',
      secret: { api_key: `k${c}` },
      scopes: ['read', 'write'],
    });
  }
  const agents = [];
  for (let a = 0; a < bulkAgents; a += 1) agents.push(await addAgent(t, `bulk-agent-${a}`));
  return { t, agents };
};

const pauseMs = 5;

/** Runs `work` while polling /healthz back to back; returns its result and the slowest answer. */
export const whilePolling = async <T>(t: TestVault, work: Promise<T>) => {
  let done = false;
  const settled = work.finally(() => {
    done = true;
  });
  let slowest = 0;
  let polls = 0;
  while (!done) {
    // Timed from before the pause: a loop blocked by the work delays the timer and then the answer,
    // which is what a client polling from outside would see.
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    const health = await t.request('GET', '/healthz', { token: null });
    expect(health.status).toBe(200);
    slowest = Math.max(slowest, performance.now() - started - pauseMs);
    polls += 1;
  }
  return { result: await settled, slowest, polls };
};

export const countRows = async (t: TestVault, table: 'grants' | 'audit_events', action?: string) => {
  const row = await t.vault.store.db
    .selectFrom(table === 'grants' ? 'grants' : 'audit_events')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .$if(action !== undefined, (qb) =>
      qb.where(sql.ref('action'), '=', action as string).where(sql.ref('decision'), '=', 'allow'),
    )
    .executeTakeFirstOrThrow();
  return Number(row.n);
};

export const liveGrants = async (t: TestVault) =>
  Number(
    (
      await t.vault.store.db
        .selectFrom('grants')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('revoked_at', 'is', null)
        .executeTakeFirstOrThrow()
    ).n,
  );

/**
 * A grant entry that fails only at write time, on either dialect: inserting a grant for this agent
 * raises in the database, the way a conflicting concurrent change would. Returns the undo.
 */
export const failGrantInsertsFor = async (t: TestVault, agentId: string): Promise<() => Promise<void>> => {
  const db = t.vault.store.db;
  if (t.vault.store.dialect === 'sqlite') {
    await sql
      .raw(
        `CREATE TRIGGER import_conflict BEFORE INSERT ON grants WHEN new.agent_id = '${agentId}' BEGIN SELECT RAISE(ABORT, 'conflict at write time'); END`,
      )
      .execute(db);
    return async () => {
      await sql`DROP TRIGGER import_conflict`.execute(db);
    };
  }
  await sql
    .raw(
      `CREATE FUNCTION import_conflict() RETURNS trigger AS $$ BEGIN IF new.agent_id = '${agentId}' THEN RAISE EXCEPTION 'conflict at write time'; END IF; RETURN new; END $$ LANGUAGE plpgsql`,
    )
    .execute(db);
  await sql`CREATE TRIGGER import_conflict BEFORE INSERT ON grants FOR EACH ROW EXECUTE FUNCTION import_conflict()`.execute(
    db,
  );
  return async () => {
    await sql`DROP TRIGGER import_conflict ON grants`.execute(db);
    await sql`DROP FUNCTION import_conflict()`.execute(db);
  };
};

/**
 * A big import on one store: it never stalls the server, records one event per grant, reports a
 * failure midway as partial, and a re-run completes it.
 */
export const bulkImportContract = (
  storeOptions: () => Promise<TestVaultOptions & { cleanup?: () => Promise<void> }>,
  budgets: { healthzMs: number },
) => {
  let t: TestVault;
  let agents: Awaited<ReturnType<typeof startBulkVault>>['agents'];
  let cleanup: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    ({ t, agents } = await startBulkVault(options));
    // Warm up: the app's first request loads its plugins.
    expect((await t.request('GET', '/v1/admin/grants?limit=1')).status).toBe(200);
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
    await cleanup?.();
  });

  it('reports a failure midway as partial, and a re-run of the same import completes it', async () => {
    // The 31st agent's grants fail at write time: the batches before its first grant commit, the
    // one that holds it and the rest do not.
    const undo = await failGrantInsertsFor(t, agents[30]!.id);
    const document = bulkDocument();
    let created: number;
    try {
      const failed = await t.request('POST', '/v1/admin/grants/import', { body: { document, ttl: '7d' } });
      expect(failed.status, failed.text).toBe(503);
      const error = errorOf(failed.body);
      expect(error.code).toBe('import_incomplete');
      created = await liveGrants(t);
      expect(created).toBeGreaterThan(30 * bulkCredentials - importBatchSize);
      expect(created).toBeLessThanOrEqual(30 * bulkCredentials);
      expect(error.message).toContain(`${created} of ${bulkGrants} grant(s) were imported`);
      // The first grant not imported is named, and the count of the others.
      const first = created % bulkCredentials;
      expect(error.message).toContain(
        `not imported: bulk-agent-${Math.floor(created / bulkCredentials)} × bulk-cred-${first},`,
      );
      expect(error.message).toContain(`and ${bulkGrants - created - 10} more`);
      expect(error.message).toContain('run the same import again');
      // Every committed grant has its event, and nothing else was recorded as allowed.
      expect(await countRows(t, 'audit_events', 'grant.create')).toBe(created);
    } finally {
      await undo();
    }

    const rerun = await t.request('POST', '/v1/admin/grants/import', { body: { document, ttl: '7d' } });
    expect(rerun.status, rerun.text).toBe(201);
    const body = rerun.body as { items: GrantView[]; skipped: GrantView[]; replaced_grant_ids: string[] };
    expect(body.items).toHaveLength(bulkGrants - created);
    expect(body.skipped).toHaveLength(created);
    expect(body.replaced_grant_ids).toEqual([]);
    expect(await liveGrants(t)).toBe(bulkGrants);
    expect(await countRows(t, 'grants')).toBe(bulkGrants);
    expect(await countRows(t, 'audit_events', 'grant.create')).toBe(bulkGrants);
  }, 120_000);

  it(`imports ${bulkGrants} grants in batches while /healthz answers under ${budgets.healthzMs} ms`, async () => {
    // Other terms than the grants in place: each is replaced, one grant.create and one grant.revoke
    // (superseded) per grant.
    const revokesBefore = await countRows(t, 'audit_events', 'grant.revoke');
    const createsBefore = await countRows(t, 'audit_events', 'grant.create');
    const { result, slowest, polls } = await whilePolling(
      t,
      t.request('POST', '/v1/admin/grants/import', {
        body: { document: bulkDocument(), until_revoked: true, reveal: true },
      }),
    );
    expect(result.status, result.text).toBe(201);
    const body = result.body as { items: GrantView[]; replaced_grant_ids: string[] };
    expect(body.items).toHaveLength(bulkGrants);
    expect(body.replaced_grant_ids).toHaveLength(bulkGrants);
    expect(await liveGrants(t)).toBe(bulkGrants);
    expect((await countRows(t, 'audit_events', 'grant.create')) - createsBefore).toBe(bulkGrants);
    expect((await countRows(t, 'audit_events', 'grant.revoke')) - revokesBefore).toBe(bulkGrants);
    const verify = await t.request('POST', '/v1/admin/audit/verify');
    expect(verify.status, verify.text).toBe(200);
    expect((verify.body as { ok: boolean }).ok).toBe(true);
    expect(polls).toBeGreaterThan(1);
    expect(slowest).toBeLessThan(budgets.healthzMs);
  }, 120_000);

  it('revokes an agent’s grants in batches, one grant.revoke each', async () => {
    const before = await countRows(t, 'audit_events', 'grant.revoke');
    const revoked = await t.request('POST', '/v1/admin/grants/revoke', { body: { agent: 'bulk-agent-1' } });
    expect(revoked.status, revoked.text).toBe(200);
    expect((revoked.body as { revoked: number }).revoked).toBe(bulkCredentials);
    expect((await countRows(t, 'audit_events', 'grant.revoke')) - before).toBe(bulkCredentials);
    expect(await liveGrants(t)).toBe(bulkGrants - bulkCredentials);
  }, 60_000);

  it(`kills the namespace in batches while /healthz answers under ${budgets.healthzMs} ms`, async () => {
    const before = await countRows(t, 'audit_events', 'namespace.revoke_all');
    const { result, slowest } = await whilePolling(t, t.request('POST', '/v1/admin/revoke-all'));
    expect(result.status, result.text).toBe(200);
    const left = bulkGrants - bulkCredentials;
    expect(result.body).toMatchObject({ grants_revoked: left, agent_keys_revoked: bulkAgents });
    expect(await liveGrants(t)).toBe(0);
    // One event per batch, whose counts add up to the answer's.
    const events = await t.vault.store.db
      .selectFrom('audit_events')
      .select('details')
      .where('action', '=', 'namespace.revoke_all')
      .orderBy('seq')
      .execute();
    expect(events.length - before).toBeGreaterThan(1);
    const counted = events
      .slice(before)
      .map((e) => JSON.parse(e.details) as { grants_revoked: number; agent_keys_revoked: number });
    expect(counted.reduce((n, d) => n + d.grants_revoked, 0)).toBe(left);
    expect(counted.reduce((n, d) => n + d.agent_keys_revoked, 0)).toBe(bulkAgents);
    expect(slowest).toBeLessThan(budgets.healthzMs);
    const verify = await t.request('POST', '/v1/admin/audit/verify');
    expect((verify.body as { ok: boolean }).ok).toBe(true);
  }, 60_000);
};
