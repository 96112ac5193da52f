import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../store/database.js';
import type { Database } from '../store/schema.js';
import {
  canonicalVersion,
  chainedColumns,
  genesisHash,
  hashCanonical,
  hmacCanonical,
  linkHash,
} from './audit-hash.js';
import { type AuditChainKey, readChainRecord, recordMatches } from './audit-keys.js';

export type VerifyProblem = 'altered' | 'missing' | 'reordered' | 'head_mismatch';

export interface BadEvent {
  /** The event where the chain breaks (for `missing`, the first seq that is gone). */
  seq: number;
  /** Its id, when it still exists. */
  id: string | null;
  problem: VerifyProblem;
  /** What was found, for a person. */
  detail: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Events that checked out before the first bad one (all of them when `ok`). */
  checked: number;
  /** The head the check ran against: a value worth keeping outside the vault to anchor the chain. */
  head: { seq: number; hash: string } | null;
  /** The first keyed (HMAC) event, when the log has switched: events before it are plain SHA-256. */
  keyedFrom?: number;
  firstBad?: BadEvent;
}

/**
 * The canonical text of each row, built by the database: one string a row crosses into JavaScript
 * instead of fourteen, which is most of the cost of reading a million rows. Both dialects quote text
 * exactly as `JSON.stringify` does for what the writer stores (it removes control characters and lone
 * surrogates); should they ever differ, the row is re-checked from its columns before it is called
 * altered (`matchesFromColumns`), so a difference costs time, never a false alarm.
 */
export const canonicalSql = (dialect: Dialect) => {
  if (dialect === 'sqlite') {
    return sql<string>`json_array(${canonicalVersion}, ${sql.join(chainedColumns.map((c) => sql.ref(c)))})`;
  }
  const cells = chainedColumns.map((c) => sql`coalesce(to_json(${sql.ref(c)})::text, 'null')`);
  return sql<string>`${`[${JSON.stringify(canonicalVersion)},`} || ${sql.join(cells, sql` || ',' || `)} || ']'`;
};

/**
 * Walks the chain in seq order, a page at a time, and stops at the first event that does not check:
 *
 * - `altered`: the stored hash is not the hash of the row's own fields and `prev_hash` (an edit), or
 *   the previous event was rewritten with a recomputed hash (the next event no longer links to it);
 * - `missing`: the seqs jump (a row was deleted), or the first event does not start from genesis;
 * - `reordered`: an event links back to an event that exists, but not the one before it (rows swapped);
 * - `head_mismatch`: the log ends before, or at a different hash than, the head row says (the newest
 *   events were deleted, or the head row is gone).
 *
 * Events from the switch record's `fromSeq` on are checked as HMACs under `key` (audit-keys.ts), the
 * ones before as plain SHA-256; the record itself must carry the key's MAC, so it can be neither moved
 * nor removed while the key exists. A log that has switched cannot be verified without the key.
 *
 * It checks up to the head it read first, so events appended while it runs are left for the next run.
 * Only the failure path runs extra queries (one unindexed), to name the event and tell a reorder from
 * a rewrite.
 */
export const verifyChain = async (
  db: Kysely<Database>,
  dialect: Dialect,
  { pageSize = 10_000, key }: { pageSize?: number; key?: AuditChainKey | undefined } = {},
): Promise<VerifyResult> => {
  const headRow = await db
    .selectFrom('audit_head')
    .select(['seq', 'hash'])
    .where('id', '=', 1)
    .executeTakeFirst();
  const head = headRow ? { seq: Number(headRow.seq), hash: headRow.hash } : null;
  const canonical = canonicalSql(dialect);

  let expectedSeq = 1;
  let prev = genesisHash;
  const record = await readChainRecord(db);
  // Past the end of any log: with no switch record every event is plain SHA-256.
  const fromSeq = record?.fromSeq ?? Number.POSITIVE_INFINITY;
  const result = (firstBad?: BadEvent): VerifyResult => ({
    ok: !firstBad,
    checked: expectedSeq - 1,
    head,
    ...(record ? { keyedFrom: record.fromSeq } : {}),
    ...(firstBad ? { firstBad } : {}),
  });
  if (record && !key) {
    throw new Error(
      `the audit log is keyed from event ${record.fromSeq} on: verifying it needs the audit chain key`,
    );
  }
  if (key && !(record && recordMatches(record, key))) {
    // Whoever removed or moved the record wants keyed events read as plain SHA-256 ones.
    return result({
      seq: record && Number.isSafeInteger(record.fromSeq) ? record.fromSeq : 1,
      id: null,
      problem: 'altered',
      detail: record
        ? "the record of where the keyed chain starts does not carry the audit key's MAC: it was changed"
        : 'the record of where the keyed chain starts was removed although the vault holds an audit key',
    });
  }
  const link = (seq: number, prevHash: string, canonical: string) =>
    seq >= fromSeq ? hmacCanonical(key!.hmacKey, prevHash, canonical) : hashCanonical(prevHash, canonical);

  const idAt = async (seq: number): Promise<string | null> =>
    (await db.selectFrom('audit_events').select('id').where('seq', '=', seq).executeTakeFirst())?.id ?? null;

  const matchesFromColumns = async (seq: number): Promise<boolean> => {
    const row = await db.selectFrom('audit_events').selectAll().where('seq', '=', seq).executeTakeFirst();
    return (
      row !== undefined &&
      linkHash(row.prev_hash, row, seq >= fromSeq ? key!.hmacKey : undefined) === row.hash
    );
  };

  const brokenLink = async (seq: number, linksTo: string): Promise<BadEvent> => {
    const linked = await db
      .selectFrom('audit_events')
      .select('seq')
      .where('hash', '=', linksTo)
      .limit(1)
      .executeTakeFirst();
    if (linked) {
      return {
        seq,
        id: await idAt(seq),
        problem: 'reordered',
        detail: `event ${seq} links back to event ${Number(linked.seq)}, not to event ${seq - 1}: events were moved`,
      };
    }
    if (seq === 1) {
      return {
        seq,
        id: await idAt(seq),
        problem: 'missing',
        detail: 'the first event does not start the chain: events before it were removed',
      };
    }
    return {
      seq: seq - 1,
      id: await idAt(seq - 1),
      problem: 'altered',
      detail: `event ${seq} links back to a hash no event has: event ${seq - 1} was rewritten with a recomputed hash, or events were removed and the rest renumbered`,
    };
  };

  for (;;) {
    const rows = await db
      .selectFrom('audit_events')
      .select(['seq', 'prev_hash', 'hash', canonical.as('canonical')])
      .where('seq', '>', expectedSeq - 1)
      .$if(head !== null, (qb) => qb.where('seq', '<=', head!.seq))
      .orderBy('seq')
      .limit(pageSize)
      .execute();
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq !== expectedSeq) {
        return result({
          seq: expectedSeq,
          id: null,
          problem: 'missing',
          detail:
            seq === expectedSeq + 1
              ? `event ${expectedSeq} was removed: the log goes from event ${expectedSeq - 1} to event ${seq}`
              : `events ${expectedSeq} to ${seq - 1} were removed: the log goes from event ${expectedSeq - 1} to event ${seq}`,
        });
      }
      if (link(seq, row.prev_hash, row.canonical) !== row.hash && !(await matchesFromColumns(seq))) {
        return result({
          seq,
          id: await idAt(seq),
          problem: 'altered',
          detail: `event ${seq} was edited: its fields no longer match its hash`,
        });
      }
      if (row.prev_hash !== prev) return result(await brokenLink(seq, row.prev_hash));
      prev = row.hash;
      expectedSeq += 1;
    }
    if (rows.length < pageSize) break;
  }

  const lastSeq = expectedSeq - 1;
  if (!head) {
    if (lastSeq === 0) return result();
    return result({
      seq: lastSeq,
      id: await idAt(lastSeq),
      problem: 'head_mismatch',
      detail: 'the audit_head row is missing although the log has events',
    });
  }
  if (lastSeq < head.seq) {
    return result({
      seq: lastSeq + 1,
      id: null,
      problem: 'head_mismatch',
      detail: `the head says the log ends at event ${head.seq}, but it ends at event ${lastSeq}: the newest events were removed`,
    });
  }
  if (prev !== head.hash) {
    return result({
      seq: head.seq,
      id: await idAt(head.seq),
      problem: 'head_mismatch',
      detail: `event ${head.seq} does not have the hash the head records: the end of the log was replaced`,
    });
  }
  return result();
};
