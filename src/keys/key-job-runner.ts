import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { type Kysely, sql } from 'kysely';
import type { KeyProvider } from '../crypto/key-provider.js';
import { isVaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../store/schema.js';
import { type KeyProviders, providerFor, unwrapMany } from './key-providers.js';
import { type KeyJob, vaultStateRepo } from './vault-state-repo.js';

export interface JobLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface KeyJobRunnerDeps {
  db: Kysely<Database>;
  providers: KeyProviders;
  clock: Clock;
  /** Unique per process: who holds the job's lease. */
  owner: string;
  logger: JobLogger;
  leaseMs?: number;
  batchSize?: number;
  pollMs?: number;
  /** Called when a job finishes, inside nothing: e.g. to purge platform keys after a switch to webhook. */
  onFinished?: (job: KeyJob) => Promise<void>;
  onProgress?: (remaining: number) => void;
}

/** Rows a job still has to move: those not yet under its target. */
export const pendingFilter = (target: string) =>
  target === 'webhook'
    ? { op: 'not like' as const, value: 'webhook:%' }
    : { op: '!=' as const, value: target };

export const countPending = async (db: Kysely<Database>, target: string): Promise<number> => {
  const filter = pendingFilter(target);
  const row = await db
    .selectFrom('data_keys')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('kek_ref', filter.op, filter.value)
    .executeTakeFirstOrThrow();
  return Number(row.n);
};

/**
 * Moves every data key to the job's target key, a batch per transaction. A batch is all-or-nothing
 * and each row is updated only if it still has the ref it was read with, so a process killed at any
 * point leaves every key readable, and whoever takes the lease next simply carries on.
 */
export const createKeyJobRunner = (deps: KeyJobRunnerDeps) => {
  const { db, providers, clock, owner, logger } = deps;
  const leaseMs = deps.leaseMs ?? 5000;
  const batchSize = deps.batchSize ?? 500;
  const pollMs = deps.pollMs ?? 1000;
  let running: Promise<void> | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  /** Takes or renews the lease; false when another live process holds it or the job is gone. */
  const claim = async (jobId: string, done?: number): Promise<KeyJob | undefined> =>
    db.transaction().execute(async (trx) => {
      const job = await vaultStateRepo.getJob(trx);
      if (!job || job.id !== jobId || job.finishedAt) return undefined;
      const now = clock.now();
      const heldByOther =
        job.owner !== null && job.owner !== owner && Date.parse(job.leaseUntil ?? '') > now.getTime();
      if (heldByOther) return undefined;
      const next: KeyJob = {
        ...job,
        owner,
        leaseUntil: new Date(now.getTime() + leaseMs).toISOString(),
        done: done ?? job.done,
      };
      await vaultStateRepo.setJob(trx, next, now);
      return next;
    });

  const targetProvider = (job: KeyJob): KeyProvider =>
    providerFor(providers, job.target === 'webhook' ? 'webhook' : 'platform');

  const runBatch = async (
    job: KeyJob,
    after: string,
  ): Promise<{ moved: number; lastId: string | undefined }> => {
    const filter = pendingFilter(job.target);
    const rows = await db
      .selectFrom('data_keys')
      .select(['id', 'wrapped_key', 'kek_ref'])
      .where('kek_ref', filter.op, filter.value)
      .where('id', '>', after)
      .orderBy('id')
      .limit(batchSize)
      .execute();
    if (rows.length === 0) return { moved: 0, lastId: undefined };

    const opened = await openEach(rows);
    const movable = rows.filter((_, i) => opened[i] !== undefined);
    const wrapped =
      movable.length > 0 ? await targetProvider(job).wrap(opened.filter((d) => d !== undefined)) : [];
    const now = clock.now().toISOString();
    let moved = 0;
    // One UPDATE per (old ref, new ref) group rather than one per row: a row moves only if it still has
    // the ref it was read with, so a concurrent writer is never overwritten.
    const groups = new Map<string, { from: string; to: string; rows: { id: string; wrapped: string }[] }>();
    movable.forEach((row, i) => {
      const to = wrapped[i]!.ref;
      const key = `${row.kek_ref}\n${to}`;
      const group = groups.get(key) ?? { from: row.kek_ref, to, rows: [] };
      group.rows.push({ id: row.id, wrapped: wrapped[i]!.wrapped });
      groups.set(key, group);
    });
    await db.transaction().execute(async (trx) => {
      for (const group of groups.values()) {
        const result = await trx
          .updateTable('data_keys')
          .set({
            wrapped_key: sql<string>`case id ${sql.join(
              group.rows.map((row) => sql`when ${row.id} then ${row.wrapped}`),
              sql` `,
            )} end`,
            kek_ref: group.to,
            updated_at: now,
          })
          .where(
            'id',
            'in',
            group.rows.map((r) => r.id),
          )
          .where('kek_ref', '=', group.from)
          .executeTakeFirst();
        moved += Number(result.numUpdatedRows);
      }
    });
    return { moved, lastId: rows.at(-1)?.id };
  };

  /** Unwraps a batch; a key that fails authentication is reported and skipped, not retried forever. */
  const openEach = async (rows: { id: string; wrapped_key: string; kek_ref: string }[]) => {
    try {
      return await unwrapMany(
        providers,
        rows.map((r) => ({ ref: r.kek_ref, wrapped: r.wrapped_key })),
      );
    } catch (error) {
      if (!isVaultError(error) || error.code !== 'decryption_failed') throw error;
      const single: (Buffer | undefined)[] = [];
      for (const row of rows) {
        try {
          single.push((await unwrapMany(providers, [{ ref: row.kek_ref, wrapped: row.wrapped_key }]))[0]);
        } catch (inner) {
          if (!isVaultError(inner) || inner.code !== 'decryption_failed') throw inner;
          logger.error(
            { data_key_id: row.id, kek_ref: row.kek_ref },
            'data key failed authentication; skipped by re-wrap',
          );
          single.push(undefined);
        }
      }
      return single;
    }
  };

  const run = async (jobId: string): Promise<void> => {
    let job = await claim(jobId);
    if (!job) return;
    logger.info(
      { job_id: job.id, target: job.target, done: job.done, total: job.total },
      'key re-wrap running',
    );
    let done = job.done;
    // Passes go in id order; a key inserted behind the cursor during a pass (a credential created
    // while the mode switches) is caught by the next one. Stop when a pass moves nothing.
    for (let movedInPass = -1; movedInPass !== 0 && !stopped;) {
      movedInPass = 0;
      let after = '';
      while (!stopped) {
        const { moved, lastId } = await runBatch(job, after);
        if (lastId === undefined) break;
        after = lastId;
        done += moved;
        movedInPass += moved;
        const renewed = await claim(job.id, done);
        if (!renewed) return;
        job = renewed;
        deps.onProgress?.(Math.max(job.total - done, 0));
        // With SQLite and platform keys every step above is synchronous underneath, so without this the
        // whole re-wrap would run as one unbroken chain of microtasks and the server would answer nothing
        // (not even /healthz) until it ended. Yielding once per batch keeps the re-wrap online.
        await yieldToEventLoop();
      }
    }
    if (stopped) return;
    const remaining = await countPending(db, job.target);
    if (remaining > 0) {
      logger.warn(
        { job_id: job.id, remaining },
        'key re-wrap left keys it could not open; see the errors above',
      );
    }
    const finished: KeyJob = {
      ...job,
      done,
      finishedAt: clock.now().toISOString(),
      owner: null,
      leaseUntil: null,
    };
    await vaultStateRepo.setJob(db, finished, clock.now());
    deps.onProgress?.(0);
    await deps.onFinished?.(finished);
    logger.info({ job_id: job.id, target: job.target, done }, 'key re-wrap finished');
  };

  const tick = async () => {
    if (running || stopped) return;
    // The guard is set before the first await, so a poll that fires meanwhile cannot start a second loop.
    running = (async () => {
      const job = await vaultStateRepo.getJob(db);
      if (!job || job.finishedAt) return;
      await run(job.id).catch((error: unknown) => {
        const code = isVaultError(error) ? error.code : 'internal_error';
        logger.error({ err: error, code, job_id: job.id }, 'key re-wrap paused; it resumes on its own');
      });
    })().finally(() => {
      running = undefined;
    });
    await running;
  };

  return {
    /** Picks up an unfinished job now and then polls for one (another replica's, whose lease ran out). */
    start() {
      stopped = false;
      void tick().catch(() => {});
      timer = setInterval(() => void tick().catch(() => {}), pollMs);
      timer.unref();
    },
    /** Starts work on the current job at once instead of at the next poll. */
    kick: () => tick(),
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await running;
      // Hand the lease back so the next process need not wait for it to run out.
      await db.transaction().execute(async (trx) => {
        const job = await vaultStateRepo.getJob(trx);
        if (job && !job.finishedAt && job.owner === owner) {
          await vaultStateRepo.setJob(trx, { ...job, owner: null, leaseUntil: null }, clock.now());
        }
      });
    },
    /** Waits for the running batch loop, if any (for tests and the CLI's in-process use). */
    idle: async () => {
      await running;
    },
  };
};

export type KeyJobRunner = ReturnType<typeof createKeyJobRunner>;
