import { createHash } from 'node:crypto';
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { ConnectSessionTable, Database } from '../store/schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export type ConnectSessionRow = Selectable<ConnectSessionTable>;
export type ConnectFlow = 'browser' | 'device' | 'client_credentials';
/**
 * `created` (link made) → `started` (the person went on to the provider; a device code is out) →
 * `exchanging` (one callback claimed it) → `completed` or `failed`. Single use: only one caller moves
 * a session out of `started`.
 */
export type ConnectStatus = 'created' | 'started' | 'exchanging' | 'completed' | 'failed';

/** Link tokens and `state` values are stored as SHA-256 only: the database alone cannot replay one. */
export const hashOf = (value: string) => createHash('sha256').update(value, 'utf8').digest('base64url');

export const connectSessionRepo = {
  insert: (db: Db, row: ConnectSessionTable) => db.insertInto('connect_sessions').values(row).execute(),

  findByToken: (db: Db, token: string) =>
    db.selectFrom('connect_sessions').selectAll().where('token_hash', '=', hashOf(token)).executeTakeFirst(),

  findByState: (db: Db, state: string) =>
    db.selectFrom('connect_sessions').selectAll().where('state_hash', '=', hashOf(state)).executeTakeFirst(),

  findById: (db: Db, namespace: string, id: string) =>
    db
      .selectFrom('connect_sessions')
      .selectAll()
      .where('namespace', '=', namespace)
      .where('id', '=', id)
      .executeTakeFirst(),

  /**
   * A session still open for the same agent, user, app and flow (an agent asking again gets the same
   * link, or the same user code).
   */
  findOpen: (
    db: Db,
    key: { namespace: string; agentId: string; subject: string; appId: string; flow: ConnectFlow },
    now: string,
  ) =>
    db
      .selectFrom('connect_sessions')
      .selectAll()
      .where('namespace', '=', key.namespace)
      .where('agent_id', '=', key.agentId)
      .where('subject', '=', key.subject)
      .where('app_id', '=', key.appId)
      .where('flow', '=', key.flow)
      .where('status', 'in', ['created', 'started'])
      .where('expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .executeTakeFirst(),

  update: (db: Db, id: string, set: Partial<ConnectSessionTable>) =>
    db.updateTable('connect_sessions').set(set).where('id', '=', id).execute(),

  /** Moves `from` → `to` only if the session is still in `from`: true for the one caller that did. */
  async claim(db: Db, id: string, from: ConnectStatus, to: ConnectStatus, now: string): Promise<boolean> {
    const result = await db
      .updateTable('connect_sessions')
      .set({ status: to, updated_at: now })
      .where('id', '=', id)
      .where('status', '=', from)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  },
};
