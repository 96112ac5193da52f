import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../store/schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * The device-poll table's statements (migration 0014). The lease is the refresh lease's pattern
 * (oauth/refresh/refresh-state-repo.ts): one conditional update takes it only when free or expired
 * and bumps `fence`; the write that ends a poll names the fence it took, so a holder that stalled past
 * its lease (and was taken over) changes nothing. `next_poll_at` is the schedule every replica reads,
 * so the provider's `interval` holds across processes, not only within one.
 */
export const devicePollRepo = {
  /** A device flow just started: first poll one interval from now. Call it in the session's transaction. */
  insert: (
    db: Db,
    row: { sessionId: string; namespace: string; intervalSeconds: number; firstPollAt: string },
  ) =>
    db
      .insertInto('device_polls')
      .values({
        session_id: row.sessionId,
        namespace: row.namespace,
        interval_seconds: row.intervalSeconds,
        next_poll_at: row.firstPollAt,
        polls: 0,
        lease_owner: null,
        lease_expires_at: null,
        fence: 0,
        updated_at: row.firstPollAt,
      })
      .execute(),

  /** Polls due and not held, oldest first: an index range read, whatever the table's size. */
  due: (db: Db, now: string, limit: number) =>
    db
      .selectFrom('device_polls')
      .select(['session_id', 'interval_seconds'])
      .where('next_poll_at', '<=', now)
      .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', now)]))
      .orderBy('next_poll_at')
      .limit(limit)
      .execute(),

  /**
   * Takes the lease when the poll is still due and free (or its holder's lease ran out); the fence
   * and interval taken, or undefined when another process has it or polled it meanwhile.
   */
  async claim(db: Db, sessionId: string, owner: string, now: string, until: string) {
    const row = await db
      .updateTable('device_polls')
      .set((eb) => ({
        lease_owner: owner,
        lease_expires_at: until,
        fence: eb('fence', '+', 1),
        updated_at: now,
      }))
      .where('session_id', '=', sessionId)
      .where('next_poll_at', '<=', now)
      .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', now)]))
      .returning(['fence', 'interval_seconds'])
      .executeTakeFirst();
    return row ? { fence: Number(row.fence), intervalSeconds: Number(row.interval_seconds) } : undefined;
  },

  /** Ends the lease with the next poll's time; false when the lease was lost (another fence). */
  async reschedule(
    db: Db,
    sessionId: string,
    fence: number,
    next: { intervalSeconds: number; nextPollAt: string },
    now: string,
  ): Promise<boolean> {
    const result = await db
      .updateTable('device_polls')
      .set((eb) => ({
        interval_seconds: next.intervalSeconds,
        next_poll_at: next.nextPollAt,
        polls: eb('polls', '+', 1),
        lease_owner: null,
        lease_expires_at: null,
        updated_at: now,
      }))
      .where('session_id', '=', sessionId)
      .where('fence', '=', fence)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  },

  /** The flow ended (tokens stored, denied, expired, gone): nothing left to poll. */
  remove: (db: Db, sessionId: string) =>
    db.deleteFrom('device_polls').where('session_id', '=', sessionId).execute(),
};
