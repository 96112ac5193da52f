import type { Kysely, Transaction } from 'kysely';
import { type AuditContext, auditedChange, type AuditSpec, systemContext } from '../audit/audit-context.js';
import type { AuditAction, AuditRecorder } from '../audit/audit-types.js';
import type { KeyProviderKind } from '../crypto/key-provider.js';
import { VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Database } from '../store/schema.js';
import { countPending, type KeyJobRunner } from './key-job-runner.js';
import { type KeyProviders, type PlatformKeyProvider, providerFor, unwrapMany } from './key-providers.js';
import { type KeyJob, vaultStateRepo } from './vault-state-repo.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface KeyManagementDeps {
  db: Kysely<Database>;
  providers: KeyProviders;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
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

/**
 * Keyring rotation, mode switches and verification. Each is audited like any change: the new key
 * version, the mode and the job commit with their event or not at all (`auditedChange`), and a
 * refusal (`mode_unchanged`, `rewrap_in_progress`, a webhook that does not answer) is recorded.
 * Key management is vault-wide; its events are filed under the `default` namespace.
 */
export const createKeyManagementService = ({
  db,
  providers,
  clock,
  audit,
  runner,
  enablePlatform,
}: KeyManagementDeps) => {
  const spec = (ctx: AuditContext, action: AuditAction): AuditSpec => ({ ctx, namespace: 'default', action });
  const currentMode = async (trx: Db = db): Promise<KeyProviderKind> =>
    (await vaultStateRepo.getMode(trx)) ?? 'platform';

  const assertNoRunningJob = async (trx: Db) => {
    const job = await vaultStateRepo.getJob(trx);
    if (job && !job.finishedAt) {
      const remaining = await countPending(trx, job.target);
      throw new VaultError(
        'rewrap_in_progress',
        `A key re-wrap to ${job.target} is running (${job.total - remaining} of ${job.total} done); watch it with \`tokenvault keys status --watch\`.`,
      );
    }
  };

  /** Records the job (and the new mode) in the change's transaction; the runner starts once it commits. */
  const startJob = async (
    trx: Transaction<Database>,
    kind: KeyJob['kind'],
    target: string,
    mode?: KeyProviderKind,
  ): Promise<KeyJob> => {
    const now = clock.now();
    const job: KeyJob = {
      id: newId(),
      kind,
      target,
      total: await countPending(trx, target),
      done: 0,
      startedAt: now.toISOString(),
      finishedAt: null,
      owner: null,
      leaseUntil: null,
    };
    if (mode) await vaultStateRepo.setMode(trx, mode, now);
    await vaultStateRepo.setJob(trx, job, now);
    return job;
  };

  const started = (job: KeyJob) => {
    void runner.kick();
    return job;
  };

  const jobFacts = (job: KeyJob) => ({
    details: { job_id: job.id, kind: job.kind, target: job.target, total: job.total },
  });

  const status = async (): Promise<KeyStatus> => {
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
  };

  /** Unwraps every data key with its provider (outside any transaction: the webhook is remote). */
  const verifyAll = async () => {
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
    const offMode = (await status()).dataKeys
      .filter((d) => !d.ref.startsWith(`${mode}:`))
      .reduce((n, d) => n + d.count, 0);
    return { mode, checked, failures, offMode, ok: failures.length === 0 && offMode === 0 };
  };

  return {
    status,

    /** A new platform key version: new data uses it at once; a background job re-wraps the rest. */
    rotate: (ctx: AuditContext = systemContext): Promise<KeyJob> =>
      auditedChange({ db, audit }, spec(ctx, 'keys.rotate'), async (trx, record) => {
        if ((await currentMode(trx)) !== 'platform') throw new VaultError('rotation_requires_platform_mode');
        await assertNoRunningJob(trx);
        const platform = providerFor(providers, 'platform') as PlatformKeyProvider;
        const version = await platform.rotate(trx);
        const job = await startJob(trx, 'rotate', `platform:${version}`);
        await record(jobFacts(job));
        return job;
      }).then(started),

    /** Switches vault mode: new data under the target at once, every existing data key re-wrapped. */
    setMode: (target: KeyProviderKind, ctx: AuditContext = systemContext): Promise<KeyJob> =>
      auditedChange(
        {
          db,
          audit,
        },
        {
          ...spec(ctx, 'keys.mode_set'),
          details: { mode: target },
          // The target provider is made ready and checked before anything changes: a webhook that is
          // missing or does not answer fails the switch here.
          prepare: async () => {
            await assertNoRunningJob(db);
            if ((await currentMode()) === target) {
              throw new VaultError('mode_unchanged', `The vault is already in ${target} mode.`);
            }
            if (target === 'webhook') {
              await providerFor(providers, 'webhook').check();
              return 'webhook';
            }
            const platform = await enablePlatform();
            await platform.check();
            return platform.activeRef();
          },
        },
        async (trx, record, ref) => {
          await assertNoRunningJob(trx);
          const job = await startJob(trx, 'mode', ref, target);
          await record(jobFacts(job));
          return job;
        },
      ).then(started),

    /** Unwraps every data key with its provider; lists those that fail. Reads only; recorded. */
    verify: (ctx: AuditContext = systemContext) =>
      auditedChange(
        { db, audit },
        { ...spec(ctx, 'keys.verify'), prepare: verifyAll },
        async (_trx, record, result) => {
          await record({
            details: {
              ok: result.ok,
              checked: result.checked,
              failures: result.failures.length,
              off_mode: result.offMode,
            },
          });
          return result;
        },
      ),
  };
};

export type KeyManagementService = ReturnType<typeof createKeyManagementService>;
