import type { Insertable, Kysely, Selectable, Transaction } from 'kysely';
import type { AdminTokenTable, Database } from '../store/schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** The `admin_tokens` table: only the admin module reads or writes it. */
export const adminTokenRepo = {
  insert: (db: Db, row: Insertable<AdminTokenTable>) => db.insertInto('admin_tokens').values(row).execute(),

  async any(db: Db): Promise<boolean> {
    return (await db.selectFrom('admin_tokens').select('id').limit(1).executeTakeFirst()) !== undefined;
  },

  list: (db: Db): Promise<Selectable<AdminTokenTable>[]> =>
    db.selectFrom('admin_tokens').selectAll().orderBy('created_at').orderBy('id').execute(),

  findById: (db: Db, id: string): Promise<Selectable<AdminTokenTable> | undefined> =>
    db.selectFrom('admin_tokens').selectAll().where('id', '=', id).executeTakeFirst(),

  findByHash: (db: Db, hash: string): Promise<Selectable<AdminTokenTable> | undefined> =>
    db.selectFrom('admin_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst(),

  /** Revokes the token unless it is revoked already; the row when this call revoked it. */
  revoke: (db: Db, id: string, at: string): Promise<Selectable<AdminTokenTable> | undefined> =>
    db
      .updateTable('admin_tokens')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .returningAll()
      .executeTakeFirst(),

  /** Revokes every root token still valid; how many. */
  async revokeRoot(db: Db, at: string): Promise<number> {
    const result = await db
      .updateTable('admin_tokens')
      .set({ revoked_at: at })
      .where('is_root', '=', 1)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  },

  touchLastUsed: (db: Db, id: string, at: string) =>
    db.updateTable('admin_tokens').set({ last_used_at: at }).where('id', '=', id).execute(),
};
