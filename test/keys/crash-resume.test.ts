import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { createAuditWriter } from '../../src/audit/audit-writer.js';
import { createCredentialService } from '../../src/credentials/credential-service.js';
import { decryptField } from '../../src/crypto/envelope.js';
import { loadRootKey, rootKeyPath } from '../../src/crypto/master-key.js';
import { createPlatformKeyProvider } from '../../src/crypto/platform-key-provider.js';
import { createWebhookKeyProvider } from '../../src/crypto/webhook-key-provider.js';
import { createGenerationCache } from '../../src/store/generation-cache.js';
import { createDataKeyService } from '../../src/keys/data-key-service.js';
import { type KeyProviders, unwrapMany } from '../../src/keys/key-providers.js';
import { type KeyJob, vaultStateRepo } from '../../src/keys/vault-state-repo.js';
import { systemClock } from '../../src/lib/clock.js';
import { adminTokenFileName, createVault } from '../../src/main.js';
import { openStore, sqliteFileName } from '../../src/store/database.js';
import { cleanEnv, type ServerProcess, startServer } from '../helpers/cli.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import {
  auditKeyRows,
  countRows,
  type JobView,
  kmsKeyId,
  refCounts,
  type StatusView,
  seedCredentials,
  startKms,
  type TestKms,
  type VerifyView,
  waitForJob,
} from './key-fixtures.js';

/**
 * A re-wrap survives `kill -9`: a real `tokenvault serve` process is killed half way through a
 * rotation (and, separately, a switch to webhook mode). Every secret must still decrypt from what is
 * on disk, and a restarted server must pick the same job up on its own once the dead process's lease
 * runs out, and finish it.
 */

const cliEntry = fileURLToPath(new URL('../../dist/cli/cli-main.js', import.meta.url));

/** Enough keys, in small enough batches, that the job is still running when the test looks at it. */
const credentialCount = 3000;
const batchSize = 20;

describe('a key re-wrap killed with SIGKILL resumes after a restart', () => {
  let seed: TempDataDir;
  let secrets: Map<string, string>;
  /** Every server process started, whichever test started it: the last line of defence. */
  const started = new Set<ServerProcess>();
  const dirs: TempDataDir[] = [];

  /**
   * What one test started. The two tests run concurrently, so each cleans up only its own processes
   * and webhook, when it ends, passed or failed.
   */
  interface Scope {
    servers: Set<ServerProcess>;
    kms?: TestKms;
  }

  const scopeFor = (onTestFinished: (fn: () => Promise<void>) => void): Scope => {
    const scope: Scope = { servers: new Set() };
    onTestFinished(async () => {
      for (const server of scope.servers) await server.stop('SIGKILL');
      await scope.kms?.stop();
    });
    return scope;
  };

  const spawnServer = async (scope: Scope, dataDir: string, env: NodeJS.ProcessEnv) => {
    const server = await startServer(['--data-dir', dataDir, '--key-job-batch-size', String(batchSize)], {
      cwd: dataDir,
      env,
    });
    started.add(server);
    scope.servers.add(server);
    return server;
  };

  /**
   * Polls the server's database file (read-only, from this process) until some data key has moved to
   * the job's target, then freezes the server with SIGSTOP and returns how many had moved by then.
   * Throws with the server's output when none moved within 20 s.
   */
  const freezeOnceMoved = async (
    server: ServerProcess,
    dataDir: string,
    isTarget: (ref: string) => boolean,
  ): Promise<number> => {
    const db = new SQLite(join(dataDir, sqliteFileName), { readonly: true, fileMustExist: true });
    const byRef = db.prepare('select kek_ref as ref, count(*) as n from data_keys group by kek_ref');
    const moved = () =>
      (byRef.all() as { ref: string; n: number }[])
        .filter((row) => isTarget(row.ref))
        .reduce((n, row) => n + row.n, 0);
    try {
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(1)) {
        if (moved() === 0) continue;
        server.child.kill('SIGSTOP');
        return moved();
      }
      throw new Error(`no data key moved within 20 s; the server printed:\n${server.output()}`);
    } finally {
      db.close();
    }
  };

  const killHard = async (server: ServerProcess) => {
    await server.stop('SIGKILL');
  };

  const call = async (
    server: ServerProcess,
    dataDir: string,
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
  ) => {
    const token = readFileSync(join(dataDir, adminTokenFileName), 'utf8').trim();
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as unknown };
  };

  /** What is on disk, read in this process with the real services and no job runner. */
  const openReader = async (dataDir: string, kms: TestKms | undefined) => {
    const store = await openStore({ dataDir });
    const providers: KeyProviders = {};
    if (existsSync(rootKeyPath(dataDir))) {
      const rootKey = loadRootKey({ dataDir, create: false }).key;
      const platform = createPlatformKeyProvider({ rootKey, db: store.db, clock: systemClock });
      await platform.initialize();
      providers.platform = platform;
    }
    if (kms) {
      providers.webhook = createWebhookKeyProvider({ url: kms.url, secret: kms.secret, clock: systemClock });
    }
    const dataKeys = createDataKeyService({ db: store.db, providers, clock: systemClock });
    const audit = createAuditWriter({
      store,
      clock: systemClock,
      logger: console,
    });
    const credentials = createCredentialService({
      store,
      access: createGenerationCache(store),
      dataKeys,
      clock: systemClock,
      audit,
    });
    return { store, providers, credentials };
  };

  /**
   * Every secret on disk decrypts to what was stored: all data keys are unwrapped in batches and every
   * field opened with the real envelope code (fast even through the webhook), and a sample also goes
   * through `readSecret`, the path a request takes.
   */
  const expectEverySecretReadable = async (dataDir: string, kms: TestKms | undefined) => {
    const reader = await openReader(dataDir, kms);
    const { db } = reader.store;
    try {
      const rows = await db
        .selectFrom('credentials as c')
        .innerJoin('credential_versions as v', (join) =>
          join.onRef('v.credential_id', '=', 'c.id').onRef('v.version', '=', 'c.current_version'),
        )
        .innerJoin('data_keys as k', 'k.id', 'c.data_key_id')
        .select(['c.id', 'c.namespace', 'c.name', 'c.current_version', 'c.data_key_id', 'v.ciphertexts'])
        .select(['k.wrapped_key', 'k.kek_ref'])
        .execute();
      expect(rows.length).toBe(secrets.size);
      const wrong: string[] = [];
      for (let i = 0; i < rows.length; i += 1000) {
        const chunk = rows.slice(i, i + 1000);
        const deks = await unwrapMany(
          reader.providers,
          chunk.map((r) => ({ ref: r.kek_ref, wrapped: r.wrapped_key })),
        );
        chunk.forEach((row, j) => {
          const { api_key: ciphertext } = JSON.parse(row.ciphertexts) as { api_key: string };
          const aad = { namespace: row.namespace, credentialId: row.id, version: row.current_version };
          const plain = decryptField(deks[j]!, row.data_key_id, { ...aad, field: 'api_key' }, ciphertext);
          if (plain.toString('utf8') !== secrets.get(row.name)) wrong.push(row.name);
        });
      }
      expect(wrong).toEqual([]);
      for (const name of [...secrets.keys()].filter((_, i) => i % 50 === 0)) {
        expect((await reader.credentials.readSecret('default', name)).secret).toEqual({
          api_key: secrets.get(name),
        });
      }
      return { refs: await refCounts(db), job: await vaultStateRepo.getJob(db) };
    } finally {
      await reader.store.close();
    }
  };

  /**
   * Starts a server on a copy of the seeded vault, starts the job, kills the server once some but not
   * all keys have moved, checks the data on disk, restarts, and waits for the same job to finish.
   */
  const crashAndResume = async (
    scope: Scope,
    start: { path: string; body?: unknown },
    env: NodeJS.ProcessEnv,
    isTarget: (ref: string) => boolean,
  ) => {
    const dir = await createTempDataDir();
    dirs.push(dir);
    cpSync(seed.dir, dir.dir, { recursive: true });

    const first = await spawnServer(scope, dir.dir, env);
    const started = await call(first, dir.dir, 'POST', start.path, start.body);
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const job = started.body as JobView;
    expect(job.total).toBe(credentialCount + auditKeyRows);

    // Frozen (SIGSTOP) once the database shows keys moved, then checked while frozen, then killed:
    // what the checks see is exactly what the kill leaves, with no window for the job to run on.
    const movedWhenFrozen = await freezeOnceMoved(first, dir.dir, isTarget);
    expect(
      movedWhenFrozen,
      'the job finished before it could be frozen: is dist/ current (npm run build)? else seed more credentials or lower the batch size',
    ).toBeLessThan(credentialCount);
    await killHard(first);

    // On disk: a job half done, keys under both the old and the new key, every secret readable.
    const afterCrash = await expectEverySecretReadable(dir.dir, scope.kms);
    const moved = Object.entries(afterCrash.refs)
      .filter(([ref]) => isTarget(ref))
      .reduce((n, [, c]) => n + c, 0);
    expect(moved, JSON.stringify(afterCrash.refs)).toBeGreaterThan(0);
    expect(moved, JSON.stringify(afterCrash.refs)).toBeLessThan(credentialCount);
    expect(afterCrash.job).toMatchObject({ id: job.id, finishedAt: null } satisfies Partial<KeyJob>);

    // Restarted, the server waits out the dead process's lease and carries on by itself.
    const second = await spawnServer(scope, dir.dir, env);
    const finished = await waitForJob(
      async () => (await call(second, dir.dir, 'GET', '/v1/admin/keys/status')).body as StatusView,
      { timeoutMs: 20_000, intervalMs: 100 },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\nserver output:\n${second.output()}`);
    });
    expect(finished.job).toMatchObject({ id: job.id, target: job.target, remaining: 0 });
    expect(finished.data_keys.filter((d) => !isTarget(d.ref))).toEqual([]);
    const verify = await call(second, dir.dir, 'POST', '/v1/admin/keys/verify');
    expect(verify.status).toBe(200);
    expect(verify.body).toMatchObject({
      ok: true,
      checked: credentialCount + auditKeyRows,
      off_mode: 0,
      failures: [],
    } satisfies Partial<VerifyView>);

    // A clean stop, then one more look at what is on disk.
    await second.stop('SIGTERM');
    const afterResume = await expectEverySecretReadable(dir.dir, scope.kms);
    expect(Object.keys(afterResume.refs).filter((ref) => !isTarget(ref))).toEqual([]);
    return { dir: dir.dir, job };
  };

  beforeAll(async () => {
    if (!existsSync(cliEntry)) throw new Error('dist/ is missing: run `npm run build` before this suite');
    seed = await createTempDataDir();
    const vault = await createVault(loadConfig({ dataDir: seed.dir, port: '0', logLevel: 'silent' }, {}), {
      keyJob: { pollMs: 60_000 },
    });
    try {
      // Seeding only: the data is thrown away, so each commit need not wait for the disk.
      await sql`PRAGMA synchronous = OFF`.execute(vault.store.db);
      secrets = await seedCredentials(vault.services.credentials, credentialCount);
    } finally {
      await vault.stop();
    }
  }, 60_000);

  afterAll(async () => {
    for (const server of started) await server.stop('SIGKILL');
    for (const dir of dirs) await dir.cleanup();
    await seed?.cleanup();
  });

  // Concurrent: most of each test is waiting for a dead process's lease to run out.
  it.concurrent(
    'a rotation: every secret reads after the kill, and the restarted server finishes the job',
    async ({ onTestFinished }) => {
      const scope = scopeFor(onTestFinished);
      const { dir } = await crashAndResume(
        scope,
        { path: '/v1/admin/keys/rotate' },
        cleanEnv(),
        (ref) => ref === 'platform:2',
      );

      const store = await openStore({ dataDir: dir });
      try {
        expect(
          await store.db.selectFrom('data_keys').select('id').where('kek_ref', '=', 'platform:1').execute(),
        ).toEqual([]);
        expect(await refCounts(store.db)).toEqual({ 'platform:2': credentialCount + auditKeyRows });
      } finally {
        await store.close();
      }
    },
    90_000,
  );

  it.concurrent(
    'a switch to webhook mode: every secret reads after the kill, and the restarted server finishes it',
    async ({ onTestFinished }) => {
      const scope = scopeFor(onTestFinished);
      const kms = await startKms();
      scope.kms = kms;
      const env = cleanEnv({
        TOKENVAULT_KMS_WEBHOOK_URL: kms.url,
        TOKENVAULT_KMS_WEBHOOK_SECRET: kms.secret,
      });
      const { dir } = await crashAndResume(
        scope,
        { path: '/v1/admin/keys/mode', body: { mode: 'webhook' } },
        env,
        (ref) => ref.startsWith('webhook:'),
      );

      // Finished: no platform key material is left.
      expect(existsSync(rootKeyPath(dir))).toBe(false);
      const store = await openStore({ dataDir: dir });
      try {
        expect(await countRows(store.db, 'kek_versions')).toBe(0);
        expect(await refCounts(store.db)).toEqual({
          [`webhook:${kmsKeyId}`]: credentialCount + auditKeyRows,
        });
      } finally {
        await store.close();
      }
    },
    90_000,
  );
});
