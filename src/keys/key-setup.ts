import { resolve } from 'node:path';
import type { Kysely } from 'kysely';
import { deleteAllKekVersions, listKekVersions } from '../crypto/kek-repo.js';
import { loadRootKey, removeRootKeyFile } from '../crypto/master-key.js';
import { createPlatformKeyProvider } from '../crypto/platform-key-provider.js';
import { createWebhookKeyProvider } from '../crypto/webhook-key-provider.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../store/schema.js';
import type { JobLogger } from './key-job-runner.js';
import { type KeyProviders, providerFor } from './key-providers.js';
import { vaultStateRepo } from './vault-state-repo.js';

export interface KeySetupConfig {
  dataDir: string;
  vaultMode: 'platform' | 'webhook';
  masterKey?: string | undefined;
  kmsWebhookUrl?: string | undefined;
  kmsWebhookSecret?: string | undefined;
  kmsWebhookTimeoutMs: number;
}

const countPlatformKeys = async (db: Kysely<Database>): Promise<number> => {
  const row = await db
    .selectFrom('data_keys')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('kek_ref', 'like', 'platform:%')
    .executeTakeFirstOrThrow();
  return Number(row.n);
};

/**
 * Decides which key providers this process needs and builds them. The platform keyring is loaded only
 * when platform mode is in use or some data key still sits under it: a vault in webhook mode never
 * creates platform key material.
 */
export const setupKeys = async ({
  config,
  db,
  clock,
  logger,
  durable,
}: {
  config: KeySetupConfig;
  db: Kysely<Database>;
  clock: Clock;
  logger: JobLogger;
  /** The store's `durable`: the re-wrapped keys must be on disk before the old key file goes. */
  durable: () => Promise<void>;
}) => {
  const storedMode = await vaultStateRepo.getMode(db);
  const mode = storedMode ?? config.vaultMode;
  if (!storedMode) await vaultStateRepo.setMode(db, mode, clock.now());

  const providers: KeyProviders = {};
  if (config.kmsWebhookUrl && config.kmsWebhookSecret) {
    providers.webhook = createWebhookKeyProvider({
      url: config.kmsWebhookUrl,
      secret: config.kmsWebhookSecret,
      timeoutMs: config.kmsWebhookTimeoutMs,
      clock,
    });
  }

  const enablePlatform = async () => {
    if (providers.platform) return providers.platform;
    const rootKey = loadRootKey({ masterKey: config.masterKey, dataDir: config.dataDir, create: true });
    if (rootKey.created) {
      logger.info(
        { path: rootKey.path && resolve(rootKey.path) },
        'generated the platform master key (mode 0600)',
      );
    }
    const platform = createPlatformKeyProvider({ rootKey: rootKey.key, db, clock });
    await platform.initialize();
    providers.platform = platform;
    return platform;
  };

  /**
   * After a switch to webhook mode the platform keyring and the generated key file go, but only once no
   * data key is left under them and no job is running; called when a job ends and at every start, so a
   * crash between the two cannot leave key material behind for good.
   */
  const purgePlatformKeys = async (): Promise<void> => {
    if ((await vaultStateRepo.getMode(db)) !== 'webhook') return;
    const job = await vaultStateRepo.getJob(db);
    if (job && !job.finishedAt) return;
    if ((await countPlatformKeys(db)) > 0) {
      logger.warn(
        {},
        'platform keys kept: some data keys are still wrapped by them; run `tokenvault keys verify`',
      );
      return;
    }
    const hadKeyring = (await listKekVersions(db)).length > 0;
    const removed = await deleteAllKekVersions(db);
    await durable();
    const fileRemoved = removeRootKeyFile(config.dataDir);
    providers.platform = undefined;
    if (hadKeyring || fileRemoved) {
      logger.info(
        { kek_versions: removed, key_file_removed: fileRemoved },
        'platform keys purged: the vault is in webhook mode',
      );
    }
  };

  if (mode === 'platform' || (await countPlatformKeys(db)) > 0) await enablePlatform();
  providerFor(providers, mode);
  await purgePlatformKeys();

  return { mode, providers, enablePlatform, purgePlatformKeys };
};
