import type { Kysely, Transaction } from 'kysely';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Dialect } from '../store/database.js';
import type { Database } from '../store/schema.js';
import { AuditInputError, toChainedFields } from './audit-event.js';
import { type ChainedFields, chainHash, genesisHash } from './audit-hash.js';
import type { AuditEventInput, AuditRecorder } from './audit-types.js';

export interface AuditLogger {
  error(object: Record<string, unknown>, message: string): void;
}

export interface AuditWriterDeps {
  db: Kysely<Database>;
  dialect: Dialect;
  clock: Clock;
  logger: AuditLogger;
  /** Most events one group commit carries. */
  maxBatch?: number;
  /** Makes the commit durable before callers are told (the store's `durable`); none: commits already are. */
  durable?: () => Promise<void>;
}

/** 17 columns a row: 500 rows stay far below both dialects' bind-parameter limits. */
const rowsPerStatement = 500;

/** Locks the chain head inside `trx`, appends `events` after it, and moves the head. */
const appendToChain = async (
  trx: Transaction<Database>,
  dialect: Dialect,
  events: ChainedFields[],
): Promise<void> => {
  if (events.length === 0) return;
  const head = await lockHead(trx, dialect);
  let seq = head.seq;
  let prev = head.hash;
  const rows = events.map((event) => {
    seq += 1;
    const hash = chainHash(prev, event);
    const row = { seq, ...event, prev_hash: prev, hash };
    prev = hash;
    return row;
  });
  for (let start = 0; start < rows.length; start += rowsPerStatement) {
    await trx
      .insertInto('audit_events')
      .values(rows.slice(start, start + rowsPerStatement))
      .execute();
  }
  await trx.updateTable('audit_head').set({ seq, hash: prev }).where('id', '=', 1).execute();
};

/**
 * The head row is the chain's lock. On PostgreSQL `FOR UPDATE` holds it until the caller's transaction
 * ends, so appenders on every replica queue behind each other and the chain stays linear. SQLite
 * transactions already exclude each other (one writer at a time, one connection per process).
 */
const lockHead = async (trx: Transaction<Database>, dialect: Dialect) => {
  const select = () =>
    trx
      .selectFrom('audit_head')
      .select(['seq', 'hash'])
      .where('id', '=', 1)
      .$if(dialect === 'postgres', (qb) => qb.forUpdate())
      .executeTakeFirst();
  let head = await select();
  if (!head) {
    // The first event ever. Another replica may be creating the head at this very moment: the insert
    // waits for it and then does nothing, and the select below takes the lock on its row.
    const created = await trx
      .insertInto('audit_head')
      .values({ id: 1, seq: 0, hash: genesisHash })
      .onConflict((oc) => oc.column('id').doNothing())
      .returning('id')
      .executeTakeFirst();
    // A head created here over existing events means the head row was deleted: starting a new chain
    // would hide that, so writing stops (fail closed) until an operator restores it.
    if (created && (await trx.selectFrom('audit_events').select('seq').limit(1).executeTakeFirst())) {
      throw new Error('the audit_head row is missing although audit events exist');
    }
    head = await select();
    if (!head) throw new Error('the audit_head row could not be created');
  }
  // `bigint` comes back from pg as a string.
  return { seq: Number(head.seq), hash: head.hash };
};

export interface AuditWriter extends AuditRecorder {
  /** Several events in one append (imports, benchmarks), inside the caller's transaction. */
  recordManyInTransaction(trx: Transaction<Database>, inputs: AuditEventInput[]): Promise<void>;
  /** Stops taking events and waits until every queued one is committed (or has failed). */
  close(): Promise<void>;
}

interface Pending {
  event: ChainedFields;
  resolve(): void;
  reject(error: unknown): void;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The audit log's only writer. `record` queues events and commits everything queued by the time the
 * database is free in one transaction (group commit): under load one durable commit carries many
 * requests' events, and each caller still resumes only after its own event is committed.
 */
export const createAuditWriter = ({
  db,
  dialect,
  clock,
  logger,
  maxBatch = 2000,
  durable = async () => {},
}: AuditWriterDeps) => {
  const queue: Pending[] = [];
  let draining: Promise<void> | undefined;
  let closed = false;

  const unavailable = (cause: unknown) =>
    isVaultError(cause) && cause.code === 'audit_unavailable'
      ? cause
      : new VaultError('audit_unavailable', undefined, { cause });

  /** Validates and stamps an event now, so a bad event fails its own caller and no one else's. */
  const prepare = (input: AuditEventInput): ChainedFields => {
    try {
      return toChainedFields(input, { id: newId(), time: clock.now().toISOString() });
    } catch (error) {
      if (error instanceof AuditInputError) {
        logger.error({ err: error, action: input.action }, 'audit event refused');
      }
      throw unavailable(error);
    }
  };

  const commit = async (batch: Pending[]) => {
    try {
      await db.transaction().execute((trx) =>
        appendToChain(
          trx,
          dialect,
          batch.map((p) => p.event),
        ),
      );
      // Only a commit on disk counts: an event is durable before any caller answers its request.
      await durable();
    } catch (error) {
      logger.error({ err: error, events: batch.length }, 'audit events could not be written; failing closed');
      const failure = unavailable(error);
      for (const p of batch) p.reject(failure);
      return;
    }
    for (const p of batch) p.resolve();
  };

  const drain = async () => {
    for (;;) {
      // One event-loop turn lets requests that arrived meanwhile join this commit.
      await nextTurn();
      if (queue.length === 0) {
        draining = undefined;
        return;
      }
      await commit(queue.splice(0, maxBatch));
    }
  };

  const writer: AuditWriter = {
    record(input) {
      if (closed) return Promise.reject(unavailable(new Error('the audit writer is closed')));
      let event: ChainedFields;
      try {
        event = prepare(input);
      } catch (error) {
        return Promise.reject(error);
      }
      return new Promise<void>((resolve, reject) => {
        queue.push({ event, resolve, reject });
        draining ??= drain();
      });
    },

    async recordInTransaction(trx, input) {
      await writer.recordManyInTransaction(trx, [input]);
    },

    async recordManyInTransaction(trx, inputs) {
      const events = inputs.map(prepare);
      try {
        await appendToChain(trx, dialect, events);
      } catch (error) {
        logger.error(
          { err: error, events: events.length },
          'audit events could not be written; failing closed',
        );
        throw unavailable(error);
      }
    },

    async close() {
      closed = true;
      while (draining) await draining;
    },
  };
  return writer;
};
