import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { masterKeyFileName, parseKeyMaterial } from '../../src/crypto/master-key.js';
import { allowedUseOf } from '../helpers/access.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault, type TestVaultOptions } from '../helpers/vault.js';
import {
  auditKeyRows,
  countRows,
  dataKeyRefOf,
  dumpDatabase,
  errorOf,
  expectAllReadable,
  expectKeyNowhereIn,
  filesUnder,
  type JobView,
  kmsKeyId,
  refCounts,
  seedCredentials,
  startKms,
  type TestKms,
  waitForJob,
  webhookSettings,
  whereKeyAppears,
  keyStatus as status,
  keyVerify as verify,
} from './key-fixtures.js';

const webhookRef = `webhook:${kmsKeyId}`;

/**
 * Webhook mode on one store, against a real reference key webhook on loopback: the vault keeps no key
 * material, fails closed while the webhook is down (metadata stays available), recovers when it is
 * back, and switches platform → webhook → platform online with every secret readable.
 */
export const webhookModeContract = (
  storeOptions: () => Promise<Pick<TestVaultOptions, 'databaseUrl'> & { cleanup?: () => Promise<void> }>,
  { startedInWebhookMode = true }: { startedInWebhookMode?: boolean } = {},
) => {
  let t: TestVault | undefined;
  let dir: TempDataDir | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  let databaseUrl: string | undefined;
  let kms: TestKms | undefined;

  const open = async (settings: TestVaultOptions['settings']) => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    databaseUrl = options.databaseUrl;
    dir = await createTempDataDir();
    t = await startTestVault({ settings, databaseUrl, dataDir: dir.dir, keyJob: { batchSize: 9 } });
    return t;
  };

  const restart = async (settings: TestVaultOptions['settings']) => {
    await t?.stop();
    t = await startTestVault({ settings, databaseUrl, dataDir: dir!.dir, keyJob: { batchSize: 9 } });
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

  const setMode = (vault: TestVault, mode: string) =>
    vault.request('POST', '/v1/admin/keys/mode', { body: { mode } });

  const masterKeyPath = () => join(dir!.dir, masterKeyFileName);

  const createThroughApi = (vault: TestVault, name: string, secret: string) =>
    vault.request('POST', '/v1/admin/credentials', {
      body: { name, type: 'api_key', secret: { api_key: secret } },
    });

  if (startedInWebhookMode) {
    it('stores and reads secrets in webhook mode and keeps no key material anywhere', async () => {
      kms = await startKms();
      const v = await open(webhookSettings(kms));
      const { credentials } = v.vault.services;
      const secrets = await seedCredentials(credentials, 4);
      const created = await createThroughApi(v, 'via-api', 'api-secret-1');
      expect(created.status).toBe(201);
      secrets.set('via-api', 'api-secret-1');

      await expectAllReadable(credentials, secrets);
      expect(await refCounts(v.vault.store.db)).toEqual({ [webhookRef]: 5 + auditKeyRows });
      expect((await status(v)).mode).toBe('webhook');
      expect(await verify(v)).toEqual({
        ok: true,
        mode: 'webhook',
        checked: 5 + auditKeyRows,
        off_mode: 0,
        failures: [],
      });
      expect((await v.request('GET', '/readyz', { token: null })).status).toBe(200);

      // No platform key was ever made: no key file, an empty keyring.
      expect(existsSync(masterKeyPath())).toBe(false);
      expect(await countRows(v.vault.store.db, 'kek_versions')).toBe(0);
      // The webhook's key and HMAC secret are nowhere: not in a file of the data dir (the SQLite file
      // and its WAL included), not in any row, not in the logs.
      expect(await whereKeyAppears(dir!.dir, kms.key)).toEqual([]);
      const dump = await dumpDatabase(v.vault.store.db);
      expectKeyNowhereIn(dump, kms.key, 'the database');
      expectKeyNowhereIn(v.logs(), kms.key, 'the logs');
      for (const text of [dump, v.logs()]) expect(text).not.toContain(kms.secret);
      for (const file of await filesUnder(dir!.dir)) {
        expect(file.bytes.includes(Buffer.from(kms.secret)), `HMAC secret in ${file.path}`).toBe(false);
      }

      // A restart stays in webhook mode without creating a platform key.
      const again = await restart(webhookSettings(kms));
      await expectAllReadable(again.vault.services.credentials, secrets);
      expect(existsSync(masterKeyPath())).toBe(false);
      expect(await countRows(again.vault.store.db, 'kek_versions')).toBe(0);
    });

    it('fails closed while the webhook is down, keeps metadata available, and recovers when it is back', async () => {
      kms = await startKms();
      const v = await open(webhookSettings(kms));
      const { credentials } = v.vault.services;
      const secrets = await seedCredentials(credentials, 3);
      const db = v.vault.store.db;
      // The agent retrieval path's read, while the webhook answers: its row is now cached, but a
      // webhook-wrapped data key never is.
      const cred0 = await db
        .selectFrom('credentials')
        .select('id')
        .where('name', '=', 'cred-0')
        .executeTakeFirstOrThrow();
      expect((await credentials.readCurrentSecret(allowedUseOf('default', cred0.id))).secret).toEqual({
        api_key: secrets.get('cred-0'),
      });

      await kms.stop();

      await expect(credentials.readSecret('default', 'cred-0')).rejects.toMatchObject({
        code: 'key_provider_unavailable',
        message: expect.stringContaining(`The key webhook at ${kms.url} cannot connect`),
      });
      await expect(credentials.readCurrentSecret(allowedUseOf('default', cred0.id))).rejects.toMatchObject({
        code: 'key_provider_unavailable',
      });
      await expect(
        credentials.create('default', { name: 'new-one', type: 'api_key', secret: { api_key: 'x-secret' } }),
      ).rejects.toMatchObject({ code: 'key_provider_unavailable' });

      const refused = await createThroughApi(v, 'new-two', 'never-stored-secret');
      expect(refused.status).toBe(503);
      expect(errorOf(refused.body).code).toBe('key_provider_unavailable');
      expect(refused.text).not.toContain('never-stored-secret');
      const rotatedSecret = await v.request('PATCH', '/v1/admin/credentials/cred-1', {
        body: { secret: { api_key: 'replacement-secret' } },
      });
      expect(rotatedSecret.status).toBe(503);
      expect(errorOf(rotatedSecret.body).code).toBe('key_provider_unavailable');
      // Nothing was half-written.
      expect(await countRows(db, 'credentials')).toBe(3);
      expect(await countRows(db, 'data_keys')).toBe(3 + auditKeyRows);
      expect(await countRows(db, 'credential_versions')).toBe(3);

      const ready = await v.request('GET', '/readyz', { token: null });
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({
        status: 'not_ready',
        checks: expect.arrayContaining([
          { name: 'key_provider', ok: false, code: 'key_provider_unavailable' },
        ]),
      });

      // Metadata never needs the key.
      const list = await v.request('GET', '/v1/admin/credentials');
      expect(list.status).toBe(200);
      expect((list.body as { items: { name: string }[] }).items.map((i) => i.name)).toEqual([
        'cred-0',
        'cred-1',
        'cred-2',
      ]);
      const show = await v.request('GET', '/v1/admin/credentials/cred-1');
      expect(show.status).toBe(200);
      expect(show.body).toMatchObject({ name: 'cred-1', version: 1, secret_fields: ['api_key'] });
      expect((await v.request('GET', '/v1/admin/keys/status')).status).toBe(200);

      await kms.restart();

      await expectAllReadable(credentials, secrets);
      expect((await v.request('GET', '/readyz', { token: null })).status).toBe(200);
      expect((await createThroughApi(v, 'new-two', 'now-stored')).status).toBe(201);
      expect((await credentials.readSecret('default', 'new-two')).secret).toEqual({ api_key: 'now-stored' });
    });
  }

  it('switches platform → webhook → platform online, every secret readable after each switch', async () => {
    // The webhook is configured but down at first.
    kms = await startKms();
    await kms.stop();
    const v = await open(webhookSettings(kms, 'platform'));
    const { credentials } = v.vault.services;
    const db = v.vault.store.db;
    const secrets = await seedCredentials(credentials, 40);
    await credentials.create('default', { name: 'multi', type: 'api_key', secret: { api_key: 'multi-v1' } });
    await credentials.update('default', 'multi', { secret: { api_key: 'multi-v2' } });
    secrets.set('multi', 'multi-v2');
    const platformKey = parseKeyMaterial(readFileSync(masterKeyPath(), 'utf8'), 'master.key');
    expect(await countRows(db, 'kek_versions')).toBe(1);
    // The probe used below finds a key where there is one: the generated key file, as base64.
    expect(await whereKeyAppears(dir!.dir, platformKey)).toContain(`${masterKeyPath()} (base64)`);

    // While the webhook is down the switch is refused and nothing changes.
    const refused = await setMode(v, 'webhook');
    expect(refused.status).toBe(503);
    expect(errorOf(refused.body)).toMatchObject({
      code: 'key_provider_unavailable',
      message: expect.stringContaining(kms.url),
    });
    expect(await status(v)).toEqual({
      mode: 'platform',
      data_keys: [{ ref: 'platform:1', count: 41 + auditKeyRows }],
      job: null,
    });
    expect(existsSync(masterKeyPath())).toBe(true);
    expect(await countRows(db, 'kek_versions')).toBe(1);
    await expectAllReadable(credentials, secrets);

    const unchanged = await setMode(v, 'platform');
    expect(unchanged.status).toBe(409);
    expect(errorOf(unchanged.body)).toMatchObject({
      code: 'mode_unchanged',
      message: expect.stringMatching(/already in platform mode/),
    });

    // platform → webhook
    await kms.restart();
    const toWebhook = await setMode(v, 'webhook');
    expect(toWebhook.status).toBe(202);
    expect(toWebhook.body).toMatchObject({
      kind: 'mode',
      target: 'webhook',
      total: 41 + auditKeyRows,
    } satisfies Partial<JobView>);
    // Reads race the re-wrap; new data goes to the webhook at once.
    const [, during] = await Promise.all([
      expectAllReadable(credentials, secrets),
      credentials.create('default', { name: 'during', type: 'api_key', secret: { api_key: 'during-1' } }),
    ]);
    expect(await dataKeyRefOf(db, during.id)).toBe(webhookRef);
    secrets.set('during', 'during-1');

    const inWebhook = await waitForJob(() => status(v));
    expect(inWebhook).toMatchObject({
      mode: 'webhook',
      data_keys: [{ ref: webhookRef, count: 42 + auditKeyRows }],
      job: { target: 'webhook', remaining: 0 },
    });
    await expectAllReadable(credentials, secrets);
    expect((await credentials.readSecret('default', 'multi', { version: 1 })).secret).toEqual({
      api_key: 'multi-v1',
    });
    expect(await verify(v)).toEqual({
      ok: true,
      mode: 'webhook',
      checked: 42 + auditKeyRows,
      off_mode: 0,
      failures: [],
    });
    // The platform key material is gone: the generated key file and the whole keyring.
    expect(existsSync(masterKeyPath())).toBe(false);
    expect(await countRows(db, 'kek_versions')).toBe(0);
    expect(await whereKeyAppears(dir!.dir, platformKey)).toEqual([]);
    expect(await whereKeyAppears(dir!.dir, kms.key)).toEqual([]);

    const sameAgain = await setMode(v, 'webhook');
    expect(sameAgain.status).toBe(409);
    expect(errorOf(sameAgain.body).code).toBe('mode_unchanged');

    // A restart in webhook mode needs no platform key and makes none.
    const w = await restart(webhookSettings(kms, 'platform'));
    expect((await status(w)).mode).toBe('webhook');
    expect(existsSync(masterKeyPath())).toBe(false);
    await expectAllReadable(w.vault.services.credentials, secrets);

    // webhook → platform: a fresh platform key and keyring take over.
    const toPlatform = await setMode(w, 'platform');
    expect(toPlatform.status).toBe(202);
    expect(toPlatform.body).toMatchObject({ kind: 'mode', target: 'platform:1', total: 42 + auditKeyRows });
    const inPlatform = await waitForJob(() => status(w));
    expect(inPlatform).toMatchObject({
      mode: 'platform',
      data_keys: [{ ref: 'platform:1', count: 42 + auditKeyRows }],
      job: { target: 'platform:1', remaining: 0 },
    });
    await expectAllReadable(w.vault.services.credentials, secrets);
    expect(await verify(w)).toEqual({
      ok: true,
      mode: 'platform',
      checked: 42 + auditKeyRows,
      off_mode: 0,
      failures: [],
    });
    expect(existsSync(masterKeyPath())).toBe(true);
    expect(await countRows(w.vault.store.db, 'kek_versions')).toBe(1);

    const platformAgain = await setMode(w, 'platform');
    expect(platformAgain.status).toBe(409);
    expect(errorOf(platformAgain.body).code).toBe('mode_unchanged');

    // Back in platform mode the webhook is no longer needed at all.
    await kms.stop();
    await expectAllReadable(w.vault.services.credentials, secrets);
    expect((await w.request('GET', '/readyz', { token: null })).status).toBe(200);
  });
};
