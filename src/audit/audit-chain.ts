import type SQLite from 'better-sqlite3';
import type { Transaction } from 'kysely';
import type { Dialect } from '../store/database.js';
import type { AuditEventTable, Database } from '../store/schema.js';
import { type ChainedFields, chainedColumns, chainHash, genesisHash } from './audit-hash.js';

/**
 * Appending to the hash chain: lock the head, link the events after it, insert them, move the head.
 * Two ways to run it, one result: inside a Kysely transaction (PostgreSQL, and changes that record
 * their own event in the same transaction), and synchronously on SQLite's writing connection (the
 * group commit of the audit writer, where Kysely's per-statement overhead was most of the cost).
 */

export interface ChainHead {
  seq: number;
  hash: string;
}

const missingHead = () => new Error('the audit_head row is missing although audit events exist');

/** The rows of `events` appended after `head`, and the head after them. Pure. */
export const linkEvents = (
  head: ChainHead,
  events: readonly ChainedFields[],
): { rows: AuditEventTable[]; head: ChainHead } => {
  let seq = head.seq;
  let prev = head.hash;
  const rows = events.map((event) => {
    seq += 1;
    const hash = chainHash(prev, event);
    const row = { seq, ...event, prev_hash: prev, hash };
    prev = hash;
    return row;
  });
  return { rows, head: { seq, hash: prev } };
};

/** 17 columns a row: 500 rows stay far below both dialects' bind-parameter limits. */
const rowsPerStatement = 500;

/** Locks the chain head inside `trx`, appends `events` after it, and moves the head. */
export const appendToChain = async (
  trx: Transaction<Database>,
  dialect: Dialect,
  events: readonly ChainedFields[],
): Promise<void> => {
  if (events.length === 0) return;
  const linked = linkEvents(await lockHead(trx, dialect), events);
  for (let start = 0; start < linked.rows.length; start += rowsPerStatement) {
    await trx
      .insertInto('audit_events')
      .values(linked.rows.slice(start, start + rowsPerStatement))
      .execute();
  }
  await trx.updateTable('audit_head').set(linked.head).where('id', '=', 1).execute();
};

/**
 * The head row is the chain's lock. On PostgreSQL `FOR UPDATE` holds it until the caller's transaction
 * ends, so appenders on every replica queue behind each other and the chain stays linear. SQLite
 * transactions already exclude each other (one writer at a time).
 */
const lockHead = async (trx: Transaction<Database>, dialect: Dialect): Promise<ChainHead> => {
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
      throw missingHead();
    }
    head = await select();
    if (!head) throw new Error('the audit_head row could not be created');
  }
  // `bigint` comes back from pg as a string.
  return { seq: Number(head.seq), hash: head.hash };
};

/** Every column of a stored event. */
const columns = [
  'seq',
  ...chainedColumns,
  'prev_hash',
  'hash',
] as const satisfies readonly (keyof AuditEventTable)[];

/**
 * The same append on SQLite's writing connection, in one synchronous `BEGIN IMMEDIATE … COMMIT`:
 * no other statement can run in between, and nothing awaits while the write lock is held. The caller
 * must hold the connection (`store.sqliteWriter`), so no Kysely transaction is open on it.
 */
export const createSqliteChainAppender = (sqlite: SQLite.Database) => {
  const selectHead = sqlite.prepare<[], ChainHead>('select seq, hash from audit_head where id = 1');
  const anyEvent = sqlite.prepare('select seq from audit_events limit 1');
  const insertHead = sqlite.prepare('insert into audit_head (id, seq, hash) values (1, 0, ?)');
  const insertEvent = sqlite.prepare(
    `insert into audit_events (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`,
  );
  const updateHead = sqlite.prepare('update audit_head set seq = ?, hash = ? where id = 1');

  const append = sqlite.transaction((events: readonly ChainedFields[]) => {
    let head = selectHead.get();
    if (!head) {
      if (anyEvent.get()) throw missingHead();
      insertHead.run(genesisHash);
      head = { seq: 0, hash: genesisHash };
    }
    const linked = linkEvents(head, events);
    for (const row of linked.rows) insertEvent.run(columns.map((column) => row[column]));
    updateHead.run(linked.head.seq, linked.head.hash);
  });

  return (events: readonly ChainedFields[]): void => {
    if (events.length > 0) append.immediate(events);
  };
};
