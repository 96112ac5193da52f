import { afterEach, expect, it } from 'vitest';
import { loadRootKey } from '../../src/crypto/master-key.js';
import { createPlatformKeyProvider } from '../../src/crypto/platform-key-provider.js';
import { createKeyJobRunner } from '../../src/keys/key-job-runner.js';
import { systemClock } from '../../src/lib/clock.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault, type TestVaultOptions } from '../helpers/vault.js';
import {
  auditKeyRows,
  countRows,
  dataKeyRefOf,
  errorOf,
  expectAllReadable,
  type JobView,
  refCounts,
  seedCredentials,
  startKms,
  type TestKms,
  waitForJob,
  webhookSettings,
  keyStatus as status,
  keyVerify as verify,
} from './key-fixtures.js';

const silentLogger = { info() {}, warn() {}, error() {} };

/**
 * Platform key rotation on one store: a new KEK version takes new data at once, old data keeps reading
 * while the background re-wrap moves it (before the job starts, half way, and after), and once the job
 * has finished no data key is left under the old version.
 */
export const rotationContract = (
  storeOptions: () => Promise<Pick<TestVaultOptions, 'databaseUrl'> & { cleanup?: () => Promise<void> }>,
) => {
  let t: TestVault | undefined;
  let dir: TempDataDir | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  let databaseUrl: string | undefined;
  let kms: TestKms | undefined;

  const open = async (extra: Omit<TestVaultOptions, 'dataDir' | 'databaseUrl'> = {}) => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    databaseUrl = options.databaseUrl;
    dir = await createTempDataDir();
    t = await startTestVault({ ...extra, databaseUrl, dataDir: dir.dir });
    return t;
  };

  afterEach(async () => {
    await t?.stop();
    t = undefined;
    await kms?.stop();
    kms = undefined;
    await cleanup?.();
    cleanup = undefined;
    await dir?.cleanup();
    dir = undefined;
  });

  it('keeps platform:1 data readable before, during and after the re-wrap, and leaves none under it', async () => {
    const v = await open();
    const { credentials } = v.vault.services;
    const db = v.vault.store.db;
    const secrets = await seedCredentials(credentials, 30);
    // One credential with two secret versions: both share its data key, so both must survive.
    await credentials.create('default', { name: 'multi', type: 'api_key', secret: { api_key: 'multi-v1' } });
    await credentials.update('default', 'multi', { secret: { api_key: 'multi-v2' } });
    expect(await refCounts(db)).toEqual({ 'platform:1': 31 + auditKeyRows });

    // The job cannot start yet: this is the state right after the call, before any key has moved.
    await v.vault.services.runner.stop();
    const rotated = await v.request('POST', '/v1/admin/keys/rotate');
    expect(rotated.status).toBe(202);
    expect(rotated.body).toMatchObject({
      kind: 'rotate',
      target: 'platform:2',
      total: 31 + auditKeyRows,
      done: 0,
      remaining: 31 + auditKeyRows,
      finished_at: null,
    } satisfies Partial<JobView>);
    const pending = await status(v);
    expect(pending.mode).toBe('platform');
    expect(pending.job).toMatchObject({
      target: 'platform:2',
      remaining: 31 + auditKeyRows,
      finished_at: null,
    });
    expect(pending.data_keys).toEqual([{ ref: 'platform:1', count: 31 + auditKeyRows }]);

    await expectAllReadable(credentials, secrets);
    expect((await credentials.readSecret('default', 'multi', { version: 1 })).secret).toEqual({
      api_key: 'multi-v1',
    });

    // New data goes under the new version at once, even though the job has not started.
    const fresh = await credentials.create('default', {
      name: 'fresh',
      type: 'api_key',
      secret: { api_key: 'fresh-secret' },
    });
    expect(await dataKeyRefOf(db, fresh.id)).toBe('platform:2');
    secrets.set('fresh', 'fresh-secret');

    // Only one re-wrap at a time, and a refused rotation adds no key version.
    const again = await v.request('POST', '/v1/admin/keys/rotate');
    expect(again.status).toBe(409);
    expect(errorOf(again.body)).toMatchObject({
      code: 'rewrap_in_progress',
      message: expect.stringMatching(/re-wrap to platform:2 is running \(0 of 32 done\)/),
    });
    expect(await countRows(db, 'kek_versions')).toBe(2);

    // Another process (a second replica) moves one batch of 10 and then stops, handing the lease back.
    const rootKey = loadRootKey({ dataDir: v.dataDir, create: false }).key;
    const platform = createPlatformKeyProvider({ rootKey, db, clock: systemClock });
    await platform.initialize();
    let stopping: Promise<void> | undefined;
    const replica = createKeyJobRunner({
      db,
      providers: { platform },
      clock: systemClock,
      owner: 'replica-b',
      logger: silentLogger,
      batchSize: 10,
      pollMs: 60_000,
      onProgress: () => {
        stopping ??= replica.stop();
      },
    });
    await replica.kick();
    await stopping;
    const halfway = await status(v);
    expect(halfway.job).toMatchObject({ done: 10, remaining: 21 + auditKeyRows, finished_at: null });
    expect(await refCounts(db)).toEqual({ 'platform:1': 21 + auditKeyRows, 'platform:2': 11 });
    await expectAllReadable(credentials, secrets);
    expect((await credentials.readSecret('default', 'multi', { version: 1 })).secret).toEqual({
      api_key: 'multi-v1',
    });

    // This vault's own runner picks the job up where the replica left it and finishes it.
    v.vault.services.runner.start();
    const finished = await waitForJob(() => status(v));
    expect(finished.job).toMatchObject({
      target: 'platform:2',
      total: 31 + auditKeyRows,
      done: 31 + auditKeyRows,
      remaining: 0,
    });
    expect(finished.job?.finished_at).toEqual(expect.any(String));
    expect(finished.data_keys).toEqual([{ ref: 'platform:2', count: 32 + auditKeyRows }]);
    expect(
      await db.selectFrom('data_keys').select('id').where('kek_ref', '=', 'platform:1').execute(),
    ).toEqual([]);

    await expectAllReadable(credentials, secrets);
    expect((await credentials.readSecret('default', 'multi')).secret).toEqual({ api_key: 'multi-v2' });
    expect((await credentials.readSecret('default', 'multi', { version: 1 })).secret).toEqual({
      api_key: 'multi-v1',
    });
    expect(await verify(v)).toEqual({
      ok: true,
      mode: 'platform',
      checked: 32 + auditKeyRows,
      off_mode: 0,
      failures: [],
    });
  });

  it('reads everything right after the call while the job runs, and rotates again once it is done', async () => {
    const v = await open({ keyJob: { batchSize: 7 } });
    const { credentials } = v.vault.services;
    const db = v.vault.store.db;
    const secrets = await seedCredentials(credentials, 60);

    const rotated = await v.request('POST', '/v1/admin/keys/rotate');
    expect(rotated.status).toBe(202);
    expect((rotated.body as JobView).target).toBe('platform:2');
    // The runner is live: these reads race the re-wrap and must all succeed whatever it has moved.
    const [, fresh] = await Promise.all([
      expectAllReadable(credentials, secrets),
      credentials.create('default', { name: 'fresh', type: 'api_key', secret: { api_key: 'fresh-2' } }),
    ]);
    expect(await dataKeyRefOf(db, fresh.id)).toBe('platform:2');
    secrets.set('fresh', 'fresh-2');

    const first = await waitForJob(() => status(v));
    expect(first.job).toMatchObject({ target: 'platform:2', remaining: 0 });
    expect(first.data_keys).toEqual([{ ref: 'platform:2', count: 61 + auditKeyRows }]);
    await expectAllReadable(credentials, secrets);
    expect(await verify(v)).toMatchObject({
      ok: true,
      checked: 61 + auditKeyRows,
      off_mode: 0,
      failures: [],
    });

    const second = await v.request('POST', '/v1/admin/keys/rotate');
    expect(second.status).toBe(202);
    expect(second.body).toMatchObject({ target: 'platform:3', total: 61 + auditKeyRows });
    const done = await waitForJob(() => status(v));
    expect(done.job).toMatchObject({ target: 'platform:3', remaining: 0 });
    expect(await refCounts(db)).toEqual({ 'platform:3': 61 + auditKeyRows });
    await expectAllReadable(credentials, secrets);
    expect(await verify(v)).toMatchObject({
      ok: true,
      checked: 61 + auditKeyRows,
      off_mode: 0,
      failures: [],
    });

    // Restarted, the vault still opens every version of its keyring and reads everything.
    await v.stop();
    t = await startTestVault({ databaseUrl, dataDir: v.dataDir });
    expect((await status(t)).data_keys).toEqual([{ ref: 'platform:3', count: 61 + auditKeyRows }]);
    await expectAllReadable(t.vault.services.credentials, secrets);
  });

  it('keeps answering requests while the re-wrap runs', async () => {
    // One key per batch: 120 batches, each ending with a turn of the event loop. A request answered
    // between two batches sees keys still waiting in the metrics; were the loop held until the job
    // ended, every answer would come before its first batch or after its last, both showing 0. This
    // counts turns of the event loop, not time, so a loaded machine does not change the outcome.
    const v = await open({ keyJob: { batchSize: 1 } });
    const secrets = await seedCredentials(v.vault.services.credentials, 120);

    expect((await v.request('POST', '/v1/admin/keys/rotate')).status).toBe(202);
    const seen: number[] = [];
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const [health, metrics] = await Promise.all([
        v.request('GET', '/healthz', { token: null }),
        v.request('GET', '/metrics', { token: null }),
      ]);
      expect(health.status).toBe(200);
      const remaining = Number(/^tokenvault_key_rewrap_remaining (\d+)$/m.exec(metrics.text)?.[1]);
      seen.push(remaining);
      if (remaining > 0 || (await v.vault.services.keys.status()).job?.finishedAt) break;
    }
    expect(
      seen.filter((remaining) => remaining > 0),
      `keys waiting, as seen by the requests answered while the job ran: ${seen.join(', ')}`,
    ).not.toEqual([]);

    const finished = await waitForJob(() => status(v));
    expect(finished.data_keys).toEqual([{ ref: 'platform:2', count: 120 + auditKeyRows }]);
    await expectAllReadable(v.vault.services.credentials, secrets);
  });

  it('refuses rotation in webhook mode, where the webhook owns the key', async () => {
    kms = await startKms();
    const v = await open({ settings: webhookSettings(kms) });
    await v.vault.services.credentials.create('default', {
      name: 'hooked',
      type: 'api_key',
      secret: { api_key: 'hooked-secret' },
    });

    const rotated = await v.request('POST', '/v1/admin/keys/rotate');
    expect(rotated.status).toBe(409);
    expect(errorOf(rotated.body)).toMatchObject({
      code: 'rotation_requires_platform_mode',
      message: expect.stringMatching(/webhook owns and rotates the key/),
    });
    // Nothing happened: no keyring was created, no job exists.
    expect(await countRows(v.vault.store.db, 'kek_versions')).toBe(0);
    expect((await status(v)).job).toBeNull();
    expect(await refCounts(v.vault.store.db)).toEqual({ 'webhook:kms-test': 1 + auditKeyRows });
  });
};
