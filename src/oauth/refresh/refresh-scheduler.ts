import type { Clock } from '../../lib/clock.js';
import type { Store } from '../../store/database.js';
import type { EventPublisher } from '../../events/event-types.js';
import type { Refresher, RefresherLogger } from './refresher.js';
import { refreshStateRepo } from './refresh-state-repo.js';

/**
 * The background worker that refreshes tokens before they expire. Each tick is one indexed range
 * read of what is due (`oauth_refresh_state_due`), so with nothing due it costs the same at a
 * thousand credentials as at a hundred thousand; due rows are refreshed `concurrency` at a time
 * through the refresher (lease, fencing and all, so replicas running the same scheduler never refresh
 * one credential twice). Now and then (`adoptEveryMs`) it also adopts OAuth credentials whose state is
 * missing or older than their secret, and announces `credential.reauthorized` for those that were
 * waiting for a person and have a new secret.
 */

export interface SchedulerOptions {
  pollMs: number;
  /** Refreshes in flight at once, per process. */
  concurrency: number;
  /** Due rows read per query. */
  batchSize: number;
  adoptEveryMs: number;
}

export const schedulerDefaults: SchedulerOptions = {
  pollMs: 1000,
  concurrency: 16,
  batchSize: 200,
  adoptEveryMs: 60_000,
};

export interface SchedulerDeps {
  store: Pick<Store, 'db'>;
  refresher: Pick<Refresher, 'refresh'>;
  events: EventPublisher;
  clock: Clock;
  logger: RefresherLogger & { error(object: object, message: string): void };
  options?: Partial<SchedulerOptions>;
}

export const createRefreshScheduler = (deps: SchedulerDeps) => {
  const { store, refresher, events, clock, logger } = deps;
  const { db } = store;
  const options = { ...schedulerDefaults, ...deps.options };
  const inFlight = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;
  let lastAdopt = -Infinity;

  /** Credentials whose secret changed under the state: start over, and say so when they come back. */
  const adopt = async () => {
    const rows = await refreshStateRepo.stale(db, 1000);
    for (const row of rows) {
      const at = clock.now().toISOString();
      const wasWaiting = row.refresh_status === 'needs_reauth' || row.credential_status === 'needs_reauth';
      await db.transaction().execute(async (trx) => {
        // Refresh soon: that is how the vault learns the new token's expiry.
        await refreshStateRepo.upsert(trx, {
          credential_id: row.id,
          namespace: row.namespace,
          status: 'active',
          secret_version: Number(row.current_version),
          access_expires_at: null,
          expiry_assumed: 1,
          next_refresh_at: at,
          last_refresh_at: null,
          failures: 0,
          last_error: null,
          updated_at: at,
        });
        if (!wasWaiting) return;
        await trx
          .updateTable('credentials')
          .set({ status: 'active', updated_at: at })
          .where('id', '=', row.id)
          .where('status', '=', 'needs_reauth')
          .execute();
        await events.publish(
          { type: 'credential.reauthorized', namespace: row.namespace, data: { credential_id: row.id } },
          trx,
        );
      });
    }
    return rows.length;
  };

  /** One pass: adopt when it is time, then refresh what is due, `concurrency` at a time. */
  const tick = async (): Promise<number> => {
    const nowMs = clock.now().getTime();
    if (nowMs - lastAdopt >= options.adoptEveryMs) {
      lastAdopt = nowMs;
      await adopt();
    }
    let done = 0;
    for (;;) {
      const due = (await refreshStateRepo.due(db, clock.now().toISOString(), options.batchSize)).filter(
        (row) => !inFlight.has(row.credential_id),
      );
      if (due.length === 0) return done;
      const queue = [...due];
      const lane = async () => {
        for (let row = queue.shift(); row; row = queue.shift()) {
          inFlight.add(row.credential_id);
          try {
            await refresher.refresh(row.namespace, row.credential_id, {
              trigger: 'scheduler',
              ifVersion: Number(row.secret_version),
            });
          } catch (error) {
            logger.error(
              { err: error, credentialId: row.credential_id },
              'oauth refresh: unexpected failure',
            );
          } finally {
            inFlight.delete(row.credential_id);
          }
          done += 1;
        }
      };
      await Promise.all(Array.from({ length: Math.min(options.concurrency, due.length) }, lane));
      if (stopped || due.length < options.batchSize) return done;
    }
  };

  const loop = () => {
    if (stopped) return;
    running = tick()
      .then(() => undefined)
      .catch((error: unknown) => logger.error({ err: error }, 'oauth refresh scheduler tick failed'))
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, options.pollMs);
      });
  };

  return {
    /** One pass, for tests and the benchmark (the worker runs it every `pollMs`). */
    tick,
    adopt,
    start() {
      if (!stopped) return;
      stopped = false;
      loop();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
};

export type RefreshScheduler = ReturnType<typeof createRefreshScheduler>;
