import type { Kysely } from 'kysely';
import type { KeyProviderKind } from '../crypto/key-provider.js';
import { VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Database } from '../store/schema.js';
import { countPending, type KeyJobRunner } from './key-job-runner.js';
import { type KeyProviders, type PlatformKeyProvider, providerFor, unwrapMany } from './key-providers.js';
import { type KeyJob, vaultStateRepo } from './vault-state-repo.js';

export interface KeyManagementDeps {
  db: Kysely<Database>;
  providers: KeyProviders;
  clock: Clock;
  runner: Pick<KeyJobRunner, 'kick'>;
  /** Makes the platform provider available (loading or creating the root key) for a switch to platform. */
  enablePlatform: () => Promise<PlatformKeyProvider>;
}

export interface KeyStatus {
  mode: KeyProviderKind;
  dataKeys: { ref: string; count: number }[];
  job: (KeyJob & { remaining: number }) | null;
}

const verifyBatch = 1000;

export const createKeyManagementService = ({
  db,
  providers,
  clock,
  runner,
  enablePlatform,
}: KeyManagementDeps) => {
  const currentMode = async (): Promise<KeyProviderKind> => (await vaultStateRepo.getMode(db)) ?? 'platform';

  const assertNoRunningJob = async () => {
    const job = await vaultStateRepo.getJob(db);
    if (job && !job.finishedAt) {
      const remaining = await countPending(db, job.target);
      throw new VaultError(
        'rewrap_in_progress',
        `A key re-wrap to ${job.target} is running (${job.total - remaining} of ${job.total} done); watch it with \`tokenvault keys status --watch\`.`,
      );
    }
  };

  const startJob = async (kind: KeyJob['kind'], target: string, mode?: KeyProviderKind): Promise<KeyJob> => {
    const now = clock.now();
    const job: KeyJob = {
      id: newId(),
      kind,
      target,
      total: await countPending(db, target),
      done: 0,
      startedAt: now.toISOString(),
      finishedAt: null,
      owner: null,
      leaseUntil: null,
    };
    await db.transaction().execute(async (trx) => {
      if (mode) await vaultStateRepo.setMode(trx, mode, now);
      await vaultStateRepo.setJob(trx, job, now);
    });
    void runner.kick();
    return job;
  };

  return {
    async status(): Promise<KeyStatus> {
      const rows = await db
        .selectFrom('data_keys')
        .select(['kek_ref', (eb) => eb.fn.countAll<number | string>().as('n')])
        .groupBy('kek_ref')
        .orderBy('kek_ref')
        .execute();
      const job = await vaultStateRepo.getJob(db);
      return {
        mode: await currentMode(),
        dataKeys: rows.map((r) => ({ ref: r.kek_ref, count: Number(r.n) })),
        job: job ? { ...job, remaining: job.finishedAt ? 0 : await countPending(db, job.target) } : null,
      };
    },

    /** A new platform key version: new data uses it at once; a background job re-wraps the rest. */
    async rotate(): Promise<KeyJob> {
      if ((await currentMode()) !== 'platform') throw new VaultError('rotation_requires_platform_mode');
      await assertNoRunningJob();
      const platform = providerFor(providers, 'platform') as PlatformKeyProvider;
      const version = await platform.rotate();
      return startJob('rotate', `platform:${version}`);
    },

    /** Switches vault mode: new data under the target at once, every existing data key re-wrapped. */
    async setMode(target: KeyProviderKind): Promise<KeyJob> {
      await assertNoRunningJob();
      if ((await currentMode()) === target) {
        throw new VaultError('mode_unchanged', `The vault is already in ${target} mode.`);
      }
      if (target === 'platform') {
        const platform = await enablePlatform();
        await platform.check();
        return startJob('mode', await platform.activeRef(), 'platform');
      }
      // Fail before anything changes if the webhook is missing or unreachable.
      await providerFor(providers, 'webhook').check();
      return startJob('mode', 'webhook', 'webhook');
    },

    /** Unwraps every data key with its provider; lists those that fail. Reads only. */
    async verify() {
      const failures: { dataKeyId: string; credentialId: string; ref: string; code: string }[] = [];
      let checked = 0;
      let after = '';
      for (;;) {
        const rows = await db
          .selectFrom('data_keys')
          .select(['id', 'credential_id', 'wrapped_key', 'kek_ref'])
          .where('id', '>', after)
          .orderBy('id')
          .limit(verifyBatch)
          .execute();
        if (rows.length === 0) break;
        try {
          await unwrapMany(
            providers,
            rows.map((r) => ({ ref: r.kek_ref, wrapped: r.wrapped_key })),
          );
        } catch {
          for (const row of rows) {
            try {
              await unwrapMany(providers, [{ ref: row.kek_ref, wrapped: row.wrapped_key }]);
            } catch (error) {
              const code = error instanceof VaultError ? error.code : 'internal_error';
              failures.push({ dataKeyId: row.id, credentialId: row.credential_id, ref: row.kek_ref, code });
            }
          }
        }
        checked += rows.length;
        after = rows.at(-1)!.id;
      }
      const mode = await currentMode();
      const status = await this.status();
      const offMode = status.dataKeys
        .filter((d) => !d.ref.startsWith(`${mode}:`))
        .reduce((n, d) => n + d.count, 0);
      return { mode, checked, failures, offMode, ok: failures.length === 0 && offMode === 0 };
    },
  };
};

export type KeyManagementService = ReturnType<typeof createKeyManagementService>;
