import { randomBytes } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Store } from '../store/database.js';
import type { Database } from '../store/schema.js';
import {
  type CounterRequirement,
  type CounterResult,
  type CountersPort,
  type CounterUsage,
  type CounterWindow,
  resultOf,
  usageOf,
  windowOf,
} from './counters.js';

/**
 * Counters in the store, exact across every replica sharing it (the `CountersPort` contract in
 * counters.ts). One `consume` is one transaction:
 *   1. for each requirement, in key order: make sure its bucket row exists (`INSERT … ON CONFLICT DO
 *      NOTHING`), then lock it (`SELECT … FOR UPDATE` on PostgreSQL; on SQLite the insert already took
 *      the database's one write lock, before anything was read);
 *   2. check every requirement against what the locked rows say;
 *   3. only if all have room, count each once.
 * Locks are taken in one global order (by key), so two requests that share counters cannot deadlock;
 * a request waits only for those counting the same keys. A sliding window's bucket row `sliding` is
 * its lock, and its counted instants are rows of `counter_hits`.
 *
 * None of these tables has an access trigger (migration 0011): counting a use never moves the access
 * generation, so it never empties the caches revocation relies on.
 */

/** A counter row older than this past its window is pruned: far beyond any replica's clock skew. */
const pruneGraceMs = 3_600_000;

const slidingBucket = 'sliding';

/** The bucket a requirement counts in at `at`, and when the row may be pruned. */
const bucketOf = (
  window: CounterWindow,
  at: Date,
): { bucket: string; resetAt: Date | null; expiresAt: string | null } => {
  if (window.kind === 'sliding') {
    // The lock row lives as long as uses do: its expiry moves with every use.
    return {
      bucket: slidingBucket,
      resetAt: null,
      expiresAt: new Date(at.getTime() + window.seconds * 1000).toISOString(),
    };
  }
  const { bucket, resetAt } = windowOf(window, at);
  return { bucket, resetAt, expiresAt: resetAt?.toISOString() ?? null };
};

type Db = Kysely<Database> | Transaction<Database>;

/** A sliding window's uses in the last `seconds` before `at`, and the oldest of them. */
const slidingUse = async (db: Db, key: string, window: { seconds: number }, at: Date) => {
  const since = at.getTime() - window.seconds * 1000;
  const row = await db
    .selectFrom('counter_hits')
    .select((eb) => [eb.fn.countAll<number | string>().as('n'), eb.fn.min('at_ms').as('oldest')])
    .where('key', '=', key)
    .where('at_ms', '>', since)
    .executeTakeFirst();
  return {
    used: Number(row?.n ?? 0),
    oldest: row?.oldest === null || row?.oldest === undefined ? undefined : Number(row.oldest),
    since,
  };
};

/** What a requirement's window holds now, read through `db` (locked in `consume`, plain in `peek`). */
const measure = async (
  db: Db,
  requirement: CounterRequirement,
  at: Date,
  locked: { count: number } | undefined,
): Promise<{ used: number; resetAt: Date | null }> => {
  const { window, limit, key } = requirement;
  if (window.kind === 'sliding') {
    const { used, oldest } = await slidingUse(db, key, window, at);
    const from = used >= limit && oldest !== undefined ? oldest : at.getTime();
    return { used, resetAt: new Date(from + window.seconds * 1000) };
  }
  const { resetAt } = bucketOf(window, at);
  return { used: locked?.count ?? 0, resetAt };
};

export interface StoreCounters extends CountersPort {
  /** Deletes buckets and sliding uses whose window ended over an hour before `at` (the pruning worker). */
  prune(at: Date): Promise<number>;
}

export const createStoreCounters = ({ store }: { store: Pick<Store, 'db'> }): StoreCounters => {
  const { db } = store;

  const readBucket = (q: Db, key: string, bucket: string) =>
    q
      .selectFrom('counter_buckets')
      .select('count')
      .where('key', '=', key)
      .where('bucket', '=', bucket)
      .executeTakeFirst();

  const keyPrefix = (prefix: string) =>
    sql<boolean>`substr(${sql.ref('key')}, 1, ${prefix.length}) = ${prefix}`;

  return {
    async consume(requirements, at) {
      if (requirements.length === 0) return [];
      // Key order is the lock order; ties keep their place so results map back by index.
      const order = requirements
        .map((_, index) => index)
        .sort((a, b) => {
          const [x, y] = [requirements[a]!.key, requirements[b]!.key];
          return x < y ? -1 : x > y ? 1 : a - b;
        });
      return db.transaction().execute(async (trx) => {
        const results: CounterResult[] = new Array<CounterResult>(requirements.length);
        const seen = new Map<string, number>();
        for (const index of order) {
          const requirement = requirements[index]!;
          const { bucket, expiresAt } = bucketOf(requirement.window, at);
          // Inserts the row, or locks the existing one (PostgreSQL's upsert waits for and locks the
          // conflicting row; SQLite's single writer lock is taken by the statement): either way the
          // row is this transaction's until it ends, and `count` is what it holds.
          const locked = await trx
            .insertInto('counter_buckets')
            .values({
              key: requirement.key,
              bucket,
              count: 0,
              max_count: requirement.limit,
              window_spec: JSON.stringify(requirement.window),
              expires_at: expiresAt,
            })
            .onConflict((oc) =>
              oc
                .columns(['key', 'bucket'])
                .doUpdateSet((eb) => ({ expires_at: eb.ref('excluded.expires_at') })),
            )
            .returning('count')
            .executeTakeFirstOrThrow();
          const { used, resetAt } = await measure(trx, requirement, at, locked);
          // The same key twice in one request: the second sees the first as counted.
          const earlier = seen.get(requirement.key) ?? 0;
          seen.set(requirement.key, earlier + 1);
          results[index] = resultOf(requirement.limit, used + earlier, resetAt);
        }
        if (!results.every((result) => result.allowed)) return results;
        for (const index of order) {
          const requirement = requirements[index]!;
          const { bucket, expiresAt } = bucketOf(requirement.window, at);
          await trx
            .updateTable('counter_buckets')
            .set((eb) => ({
              count: eb('count', '+', 1),
              max_count: requirement.limit,
              window_spec: JSON.stringify(requirement.window),
              expires_at: expiresAt,
            }))
            .where('key', '=', requirement.key)
            .where('bucket', '=', bucket)
            .execute();
          if (requirement.window.kind === 'sliding') {
            const since = at.getTime() - requirement.window.seconds * 1000;
            await trx
              .deleteFrom('counter_hits')
              .where('key', '=', requirement.key)
              .where('at_ms', '<=', since)
              .execute();
            await trx
              .insertInto('counter_hits')
              .values({ key: requirement.key, at_ms: at.getTime(), id: randomBytes(8).toString('hex') })
              .execute();
          }
        }
        return results;
      });
    },

    async peek(requirements, at) {
      return Promise.all(
        requirements.map(async (requirement) => {
          const { bucket } = bucketOf(requirement.window, at);
          const row = await readBucket(db, requirement.key, bucket);
          const { used, resetAt } = await measure(db, requirement, at, row);
          return resultOf(requirement.limit, used, resetAt);
        }),
      );
    },

    async usage(prefix, at) {
      const rows = await db
        .selectFrom('counter_buckets')
        .select(['key', 'bucket', 'count', 'max_count', 'window_spec', 'expires_at'])
        .where(keyPrefix(prefix))
        .orderBy('key')
        .execute();
      const byKey = new Map<string, typeof rows>();
      for (const row of rows) byKey.set(row.key, [...(byKey.get(row.key) ?? []), row]);
      const lines: CounterUsage[] = [];
      for (const [key, keyRows] of byKey) {
        // The row of the latest window says which window and limit the key was last counted against.
        const current = keyRows.reduce((latest, row) =>
          (row.expires_at ?? '~') > (latest.expires_at ?? '~') ? row : latest,
        );
        const window = JSON.parse(current.window_spec) as CounterWindow;
        const requirement = { key, window, limit: current.max_count };
        const { bucket } = bucketOf(window, at);
        const row = keyRows.find((candidate) => candidate.bucket === bucket);
        const { used, resetAt } = await measure(db, requirement, at, row);
        lines.push(usageOf(key, window, current.max_count, used, resetAt));
      }
      return lines.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },

    async reset(prefix) {
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('counter_buckets').where(keyPrefix(prefix)).execute();
        await trx.deleteFrom('counter_hits').where(keyPrefix(prefix)).execute();
      });
    },

    async prune(at) {
      const cutoffIso = new Date(at.getTime() - pruneGraceMs).toISOString();
      return db.transaction().execute(async (trx) => {
        // A sliding window's uses go with its lock row: every use is older than the row's expiry
        // minus the window, so none of them counts any more. Then every bucket whose window ended.
        await trx
          .deleteFrom('counter_hits')
          .where('key', 'in', (eb) =>
            eb
              .selectFrom('counter_buckets')
              .select('key')
              .where('bucket', '=', slidingBucket)
              .where('expires_at', '<', cutoffIso),
          )
          .execute();
        const result = await trx
          .deleteFrom('counter_buckets')
          .where('expires_at', 'is not', null)
          .where('expires_at', '<', cutoffIso)
          .executeTakeFirst();
        return Number(result.numDeletedRows);
      });
    },
  };
};
