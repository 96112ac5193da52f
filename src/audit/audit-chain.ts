import type SQLite from 'better-sqlite3';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Dialect } from '../store/database.js';
import type { AuditEventTable, Database } from '../store/schema.js';
import { type ChainedFields, chainedColumns, genesisHash, linkHash } from './audit-hash.js';

/**
 * Appending to the hash chain: read the head, link the events after it, insert them, move the head.
 * Three ways to run it, one result: one conditional statement on PostgreSQL (alone, or inside a
 * change's transaction), a Kysely transaction on SQLite (changes that record their own event), and
 * synchronously on the SQLite audit thread's connection (the group commit of the audit writer, where
 * Kysely's per-statement overhead was most of the cost).
 */

export interface ChainHead {
  seq: number;
  hash: string;
}

const missingHead = () => new Error('the audit_head row is missing although audit events exist');

/**
 * The rows of `events` appended after `head`, and the head after them. Pure. With the audit chain key
 * (audit-keys.ts) each link is an HMAC; without it, plain SHA-256 (stores that never switched, tests).
 */
export const linkEvents = (
  head: ChainHead,
  events: readonly ChainedFields[],
  key?: Buffer,
): { rows: AuditEventTable[]; head: ChainHead } => {
  let seq = head.seq;
  let prev = head.hash;
  const rows = events.map((event) => {
    seq += 1;
    const hash = linkHash(prev, event, key);
    const row = { seq, ...event, prev_hash: prev, hash };
    prev = hash;
    return row;
  });
  return { rows, head: { seq, hash: prev } };
};

/** Every column of a stored event. */
const columns = [
  'seq',
  ...chainedColumns,
  'prev_hash',
  'hash',
] as const satisfies readonly (keyof AuditEventTable)[];

/** 17 columns a row: 500 rows stay far below SQLite's bind-parameter limit. */
const rowsPerStatement = 500;

/**
 * Appends `events` after the chain's head and moves the head. On SQLite, inside `trx` (which holds the
 * write lock since it began). On PostgreSQL, in one statement that moves the head only if it is still
 * where it was read (see `appendOnPostgres`): pass the Kysely instance itself (the statement commits
 * on its own, holding the head's row lock for that statement only) or a caller's transaction (the
 * events commit with its change, and the lock is held until that commit).
 */
export const appendToChain = async (
  db: Kysely<Database> | Transaction<Database>,
  dialect: Dialect,
  events: readonly ChainedFields[],
  key?: Buffer,
): Promise<void> => {
  if (events.length === 0) return;
  if (dialect === 'postgres') return appendOnPostgres(db, events, key);
  const trx = db as Transaction<Database>;
  const linked = linkEvents(await readHead(trx), events, key);
  for (let start = 0; start < linked.rows.length; start += rowsPerStatement) {
    await trx
      .insertInto('audit_events')
      .values(linked.rows.slice(start, start + rowsPerStatement))
      .execute();
  }
  await trx.updateTable('audit_head').set(linked.head).where('id', '=', 1).execute();
};

/** The head, created (at genesis) when there is none yet and no event exists. */
const readHead = async (db: Kysely<Database> | Transaction<Database>): Promise<ChainHead> => {
  const select = () =>
    db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst();
  let head = await select();
  if (!head) {
    // The first event ever. Another replica may be creating the head at this very moment: the insert
    // then does nothing, and the select below reads theirs.
    const created = await db
      .insertInto('audit_head')
      .values({ id: 1, seq: 0, hash: genesisHash })
      .onConflict((oc) => oc.column('id').doNothing())
      .returning('id')
      .executeTakeFirst();
    // A head created here over existing events means the head row was deleted: starting a new chain
    // would hide that, so writing stops (fail closed) until an operator restores it.
    if (created && (await db.selectFrom('audit_events').select('seq').limit(1).executeTakeFirst())) {
      throw missingHead();
    }
    head = await select();
    if (!head) throw new Error('the audit_head row could not be created');
  }
  // `bigint` comes back from pg as a string.
  return { seq: Number(head.seq), hash: head.hash };
};

/**
 * How many times an append links its events again after other appenders moved the head first. Each
 * try is one statement bounded by the pool's `lock_timeout`; losing this many races in a row means the
 * chain is far busier than any vault makes it.
 */
const postgresAppendTries = 100;

const columnList = sql.join(columns.map((column) => sql.ref(column)));
/** The events travel as one JSON parameter: no bind-parameter limit, one statement whatever the batch. */
const recordType = sql.join(
  columns.map((column) => sql.raw(`${column} ${column === 'seq' ? 'bigint' : 'text'}`)),
);

/**
 * PostgreSQL: read the head without a lock, link the events after it here (the links need the audit
 * key, which never enters the database, and the exact JSON the chain is defined over), then, in ONE statement, move the head only
 * if it is still the one read and insert the events only if it moved. The head's row lock is taken by
 * that statement's UPDATE and, outside a caller's transaction, released when the same statement
 * commits: no replica ever holds the chain across a round trip to itself, so a paused or partitioned
 * replica cannot stop the others. A replica that lost the race (another moved the head since the
 * read) inserts nothing, reads the new head and links again. Under PostgreSQL's READ COMMITTED a
 * waiting UPDATE re-checks its condition against the row the winner committed, so two appenders can
 * never both move the head from the same place: the chain stays linear across replicas.
 */
const appendOnPostgres = async (
  db: Kysely<Database> | Transaction<Database>,
  events: readonly ChainedFields[],
  key: Buffer | undefined,
): Promise<void> => {
  for (let attempt = 0; attempt < postgresAppendTries; attempt += 1) {
    const head = await readHead(db);
    const linked = linkEvents(head, events, key);
    const result = await sql<{ appended: string | number }>`
      with moved as (
        update audit_head set seq = ${linked.head.seq}, hash = ${linked.head.hash}
        where id = 1 and seq = ${head.seq} and hash = ${head.hash}
        returning 1
      ), appended as (
        insert into audit_events (${columnList})
        select ${columnList} from jsonb_to_recordset(${JSON.stringify(linked.rows)}::jsonb) as r(${recordType})
        where exists (select 1 from moved)
        returning 1
      )
      select count(*) as appended from appended`.execute(db);
    if (Number(result.rows[0]?.appended) === events.length) return;
  }
  throw new Error(`the audit chain head moved under ${postgresAppendTries} appends in a row`);
};

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

  const append = sqlite.transaction((events: readonly ChainedFields[], key: Buffer | undefined) => {
    let head = selectHead.get();
    if (!head) {
      if (anyEvent.get()) throw missingHead();
      insertHead.run(genesisHash);
      head = { seq: 0, hash: genesisHash };
    }
    const linked = linkEvents(head, events, key);
    for (const row of linked.rows) insertEvent.run(columns.map((column) => row[column]));
    updateHead.run(linked.head.seq, linked.head.hash);
  });

  return (events: readonly ChainedFields[], key?: Buffer): void => {
    if (events.length > 0) append.immediate(events, key);
  };
};
