import { randomBytes } from 'node:crypto';
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Clock } from '../lib/clock.js';
import type { Dialect } from '../store/database.js';
import type { Database, EventOutboxTable } from '../store/schema.js';
import type { EventPublisher, VaultEvent } from './event-types.js';

/**
 * The outbox: an event is a row written in the transaction of the change it announces, so it is
 * delivered if and only if that change commits, and a crash between the commit and the delivery loses
 * nothing (the deliverer finds the row later). Delivery is at least once: a receiver deduplicates by
 * `webhook-id` (docs/events.md).
 */

export type OutboxRow = Selectable<EventOutboxTable>;

/** The JSON body every attempt sends (docs/events.md, "Payload"). */
export interface EventPayload {
  id: string;
  type: VaultEvent['type'];
  timestamp: string;
  namespace: string;
  data: VaultEvent['data'];
}

/** `evt_` and 128 random bits: the `webhook-id` header, the same on every attempt. */
const newEventId = (): string => `evt_${randomBytes(16).toString('base64url')}`;

export interface EventPublisherDeps {
  db: Kysely<Database>;
  clock: Clock;
  /**
   * False when no webhook is configured: `publish` is then a no-op. An outbox nobody drains would
   * only grow, and what the event announces is in the audit log already (every change that publishes
   * one records its own audit event).
   */
  enabled: boolean;
}

export const createEventPublisher = ({ db, clock, enabled }: EventPublisherDeps): EventPublisher => ({
  async publish(event, trx?: Transaction<Database>) {
    if (!enabled) return;
    const now = clock.now().toISOString();
    const id = newEventId();
    const payload: EventPayload = {
      id,
      type: event.type,
      timestamp: now,
      namespace: event.namespace,
      data: event.data,
    };
    await (trx ?? db)
      .insertInto('event_outbox')
      .values({
        id,
        namespace: event.namespace,
        type: event.type,
        payload: JSON.stringify(payload),
        created_at: now,
        attempts: 0,
        next_attempt_at: now,
        lease_owner: null,
        lease_until: null,
        last_error: null,
      })
      .execute();
  },
});

/** What the deliverer does with the outbox. Every write after the claim is fenced by the lease owner. */
export const outboxRepo = {
  /**
   * Takes up to `limit` due rows that no live lease holds, for `owner` until `leaseUntil`. On
   * PostgreSQL the candidates are locked with SKIP LOCKED, so two replicas claiming at once take
   * disjoint rows without waiting on each other; the outer conditions are re-checked on the locked
   * rows. SQLite has one writer at a time, so the statement alone is atomic.
   */
  async claim(
    db: Kysely<Database>,
    dialect: Dialect,
    claim: { owner: string; now: Date; leaseUntil: Date; limit: number },
  ): Promise<OutboxRow[]> {
    const now = claim.now.toISOString();
    return db
      .updateTable('event_outbox')
      .set({ lease_owner: claim.owner, lease_until: claim.leaseUntil.toISOString() })
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('event_outbox')
          .select('id')
          .where('next_attempt_at', '<=', now)
          .where((w) => w.or([w('lease_until', 'is', null), w('lease_until', '<=', now)]))
          .orderBy('next_attempt_at')
          .orderBy('id')
          .limit(claim.limit)
          .$if(dialect === 'postgres', (q) => q.forUpdate().skipLocked()),
      )
      .where((w) => w.or([w('lease_until', 'is', null), w('lease_until', '<=', now)]))
      .returningAll()
      .execute();
  },

  /** Delivered (or given up on and recorded): the row goes. */
  async remove(db: Kysely<Database>, id: string, owner: string): Promise<void> {
    await db.deleteFrom('event_outbox').where('id', '=', id).where('lease_owner', '=', owner).execute();
  },

  /** Failed this time: try again at `next`, and let go of the lease. */
  async retryAt(
    db: Kysely<Database>,
    row: { id: string; owner: string; attempts: number; next: Date; lastError: string },
  ): Promise<void> {
    await db
      .updateTable('event_outbox')
      .set({
        attempts: row.attempts,
        next_attempt_at: row.next.toISOString(),
        last_error: row.lastError,
        lease_owner: null,
        lease_until: null,
      })
      .where('id', '=', row.id)
      .where('lease_owner', '=', row.owner)
      .execute();
  },

  /** Leases `owner` still holds, handed back at shutdown so another replica need not wait them out. */
  async release(db: Kysely<Database>, owner: string): Promise<void> {
    await db
      .updateTable('event_outbox')
      .set({ lease_owner: null, lease_until: null })
      .where('lease_owner', '=', owner)
      .execute();
  },
};
