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
 *   1. for each requirement, in key order: insert its bucket row with a count of one, or lock the
 *      existing row and add one (`INSERT … ON CONFLICT DO UPDATE … RETURNING count`: PostgreSQL's
 *      upsert waits for and locks a row another transaction holds; on SQLite the statement takes the
 *      database's one write lock before anything is read);
 *   2. the returned count (less this use) says whether the window had room;
 *   3. if any had none, the transaction rolls back, so nothing is counted anywhere.
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

/** What a requirement's window holds now: a sliding one from its uses, the others from their bucket row. */
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

/** Thrown inside a consume's transaction to roll back every count of a request some counter refused. */
class Refused {
  constructor(readonly results: CounterResult[]) {}
}

export interface StoreCounters extends CountersPort {
  /**
   * The admin reset inside the caller's transaction, so it commits with its audit event: forgets
   * every count of the keys starting with `keyPrefix` that `pick` chooses, and returns those keys.
   */
  resetIn(trx: Transaction<Database>, keyPrefix: string, pick?: (key: string) => boolean): Promise<string[]>;
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
      try {
        return await db.transaction().execute(async (trx) => {
          const results: CounterResult[] = new Array<CounterResult>(requirements.length);
          for (const index of order) {
            const requirement = requirements[index]!;
            const { bucket, resetAt, expiresAt } = bucketOf(requirement.window, at);
            // One statement inserts the row or locks the existing one (PostgreSQL's upsert waits for
            // and locks the conflicting row; SQLite's one write lock is taken by it) and counts this
            // use; `count` is then what the window holds with it. A refusal rolls everything back.
            const { count } = await trx
              .insertInto('counter_buckets')
              .values({
                key: requirement.key,
                bucket,
                count: 1,
                max_count: requirement.limit,
                window_spec: JSON.stringify(requirement.window),
                expires_at: expiresAt,
              })
              .onConflict((oc) =>
                oc.columns(['key', 'bucket']).doUpdateSet((eb) => ({
                  count: eb('counter_buckets.count', '+', 1),
                  max_count: eb.ref('excluded.max_count'),
                  window_spec: eb.ref('excluded.window_spec'),
                  expires_at: eb.ref('excluded.expires_at'),
                })),
              )
              .returning('count')
              .executeTakeFirstOrThrow();
            if (requirement.window.kind !== 'sliding') {
              // The same key twice in one request counts twice, so the second sees the first.
              results[index] = resultOf(requirement.limit, count - 1, resetAt);
              continue;
            }
            const measured = await measure(trx, requirement, at, undefined);
            results[index] = resultOf(requirement.limit, measured.used, measured.resetAt);
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
          if (!results.every((result) => result.allowed)) throw new Refused(results);
          return results;
        });
      } catch (error) {
        if (error instanceof Refused) return error.results;
        throw error;
      }
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

    async resetIn(trx, prefix, pick = () => true) {
      const rows = await trx
        .selectFrom('counter_buckets')
        .select('key')
        .distinct()
        .where(keyPrefix(prefix))
        .orderBy('key')
        .execute();
      const keys = rows.map((row) => row.key).filter(pick);
      if (keys.length === 0) return [];
      await trx.deleteFrom('counter_buckets').where('key', 'in', keys).execute();
      await trx.deleteFrom('counter_hits').where('key', 'in', keys).execute();
      return keys;
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
