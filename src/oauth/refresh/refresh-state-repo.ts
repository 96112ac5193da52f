import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, OAuthRefreshStateTable } from '../../store/schema.js';
import type { RefreshStatus } from './refresh-types.js';

type Db = Kysely<Database> | Transaction<Database>;
export type RefreshStateRow = Selectable<OAuthRefreshStateTable>;

/** The fields a refresh outcome writes (everything but identity and the lease). */
export type StatePatch = Partial<
  Pick<
    OAuthRefreshStateTable,
    | 'status'
    | 'secret_version'
    | 'access_expires_at'
    | 'expiry_assumed'
    | 'next_refresh_at'
    | 'last_refresh_at'
    | 'failures'
    | 'last_error'
  >
>;

export const toRefreshStatus = (row: RefreshStateRow): RefreshStatus => ({
  status: row.status as RefreshStatus['status'],
  accessExpiresAt: row.access_expires_at,
  expiryAssumed: Number(row.expiry_assumed) === 1,
  lastRefreshAt: row.last_refresh_at,
  nextRefreshAt: row.next_refresh_at,
  failures: Number(row.failures),
  lastError: row.last_error,
});

/**
 * The refresh table's statements. The lease is one conditional update: it is taken only when free
 * or expired, and taking it bumps `fence`; every write that ends a refresh names the fence it took,
 * so a holder that stalled past its lease (and was taken over) changes nothing.
 */
export const refreshStateRepo = {
  get: (db: Db, credentialId: string): Promise<RefreshStateRow | undefined> =>
    db
      .selectFrom('oauth_refresh_state')
      .selectAll()
      .where('credential_id', '=', credentialId)
      .executeTakeFirst(),

  /**
   * Records a token just issued for a credential (connect, reconnect, or a secret an admin stored):
   * the state starts over for `secret_version`. Call it in the transaction that stores the token.
   */
  upsert: async (db: Db, row: Omit<OAuthRefreshStateTable, 'lease_owner' | 'lease_expires_at' | 'fence'>) => {
    await db
      .insertInto('oauth_refresh_state')
      .values({ ...row, lease_owner: null, lease_expires_at: null, fence: 0 })
      .onConflict((oc) =>
        oc.column('credential_id').doUpdateSet({
          status: row.status,
          secret_version: row.secret_version,
          access_expires_at: row.access_expires_at,
          expiry_assumed: row.expiry_assumed,
          next_refresh_at: row.next_refresh_at,
          last_refresh_at: row.last_refresh_at,
          failures: row.failures,
          last_error: row.last_error,
          updated_at: row.updated_at,
        }),
      )
      .execute();
  },

  /** Due rows, oldest first: an index range read, whatever the table's size. */
  due: (db: Db, now: string, limit: number) =>
    db
      .selectFrom('oauth_refresh_state')
      .select(['credential_id', 'namespace', 'secret_version'])
      .where('next_refresh_at', '<=', now)
      .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', now)]))
      .orderBy('next_refresh_at')
      .limit(limit)
      .execute(),

  /**
   * Takes the lease when it is free or expired; the fence taken, or undefined when someone holds it.
   * `next_refresh_at` stays: if the holder dies, the row is due again once its lease has run out.
   */
  async claim(db: Db, credentialId: string, owner: string, now: string, until: string) {
    const row = await db
      .updateTable('oauth_refresh_state')
      .set((eb) => ({
        lease_owner: owner,
        lease_expires_at: until,
        fence: eb('fence', '+', 1),
        updated_at: now,
      }))
      .where('credential_id', '=', credentialId)
      .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', now)]))
      .returning('fence')
      .executeTakeFirst();
    return row ? Number(row.fence) : undefined;
  },

  /** Ends the lease with the outcome; false when the lease was lost (another fence). */
  async finish(
    db: Db,
    credentialId: string,
    fence: number,
    patch: StatePatch,
    now: string,
  ): Promise<boolean> {
    const result = await db
      .updateTable('oauth_refresh_state')
      .set({ ...patch, lease_owner: null, lease_expires_at: null, updated_at: now })
      .where('credential_id', '=', credentialId)
      .where('fence', '=', fence)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  },

  /**
   * OAuth credentials whose state is missing or describes an older secret version (stored by hand,
   * reconnected, or made before this table existed). Run now and then, not per tick.
   */
  stale: (db: Db, limit: number) =>
    db
      .selectFrom('credentials as c')
      .leftJoin('oauth_refresh_state as s', 's.credential_id', 'c.id')
      .select([
        'c.id',
        'c.namespace',
        'c.current_version',
        'c.status as credential_status',
        's.status as refresh_status',
      ])
      .where('c.type', '=', 'oauth2')
      .where((eb) =>
        eb.or([eb('s.credential_id', 'is', null), eb('s.secret_version', '<', eb.ref('c.current_version'))]),
      )
      .limit(limit)
      .execute(),

  /**
   * The scopes a client-credentials connection asked for, when the credential is one (its tokens are
   * renewed by asking again, not refreshed); undefined for any other credential. Indexed by
   * `connect_sessions_credential` (migration 0015).
   */
  async clientCredentialsScopes(db: Db, credentialId: string): Promise<string[] | undefined> {
    const row = await db
      .selectFrom('connect_sessions')
      .select('scopes')
      .where('credential_id', '=', credentialId)
      .where('flow', '=', 'client_credentials')
      .where('status', '=', 'completed')
      .orderBy('updated_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? (JSON.parse(row.scopes) as string[]) : undefined;
  },

  remove: (db: Db, credentialId: string) =>
    db.deleteFrom('oauth_refresh_state').where('credential_id', '=', credentialId).execute(),
};
