import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';

/**
 * Platform-mode KEK versions, each wrapped by the root key. Every function takes the database or a
 * transaction (a Kysely `Transaction` is a `Kysely`), so callers choose the transaction boundary.
 */
export interface KekVersion {
  version: number;
  wrappedKey: string;
  createdAt: string;
}

type Db = Kysely<Database>;

const toKekVersion = (row: {
  version: number | string;
  wrapped_key: string;
  created_at: string;
}): KekVersion => ({
  // PostgreSQL drivers may return integers as strings; the keyring relies on numeric comparisons.
  version: Number(row.version),
  wrappedKey: row.wrapped_key,
  createdAt: row.created_at,
});

export const listKekVersions = async (db: Db): Promise<KekVersion[]> => {
  const rows = await db.selectFrom('kek_versions').selectAll().orderBy('version', 'asc').execute();
  return rows.map(toKekVersion);
};

export const getKekVersion = async (db: Db, version: number): Promise<KekVersion | undefined> => {
  const row = await db
    .selectFrom('kek_versions')
    .selectAll()
    .where('version', '=', version)
    .executeTakeFirst();
  return row ? toKekVersion(row) : undefined;
};

/** The newest version, or `undefined` when the keyring is empty. */
export const maxKekVersion = async (db: Db): Promise<number | undefined> => {
  const row = await db
    .selectFrom('kek_versions')
    .select((eb) => eb.fn.max('version').as('max'))
    .executeTakeFirst();
  return row?.max === null || row?.max === undefined ? undefined : Number(row.max);
};

/** Fails (primary key) when the version exists, which is how two replicas racing to rotate are told apart. */
export const insertKekVersion = async (db: Db, kek: KekVersion): Promise<void> => {
  await db
    .insertInto('kek_versions')
    .values({ version: kek.version, wrapped_key: kek.wrappedKey, created_at: kek.createdAt })
    .execute();
};

/** Used once every DEK has been re-wrapped by the webhook: the platform keyring is then dead weight. */
export const deleteAllKekVersions = async (db: Db): Promise<number> => {
  const result = await db.deleteFrom('kek_versions').executeTakeFirst();
  return Number(result.numDeletedRows);
};
