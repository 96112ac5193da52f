import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Store } from '../store/database.js';
import type { Params } from '../store/prepared.js';
import type { CredentialTable, Database } from '../store/schema.js';
import type { CredentialStatus, CredentialType, Injection } from './credential-types.js';
import { injectionsOf, parseStoredInjections, storedInjections } from './injection-list.js';

export type Db = Kysely<Database> | Transaction<Database>;

/** Everything about a credential except its secret. */
export interface Credential {
  id: string;
  namespace: string;
  name: string;
  type: CredentialType;
  description: string;
  scopes: string[];
  allowedHosts: string[];
  /** Where the HTTP proxy forwards calls made with it (docs/proxy.md); null: not proxied. */
  baseUrl: string | null;
  /** The main injection: `injections[0]` (what a reveal grant renders its token type from). */
  injection: Injection;
  /**
   * Every injection the HTTP proxy applies, in order (one or several; src/credentials/injection-list.ts).
   * Always set when read from the store; optional so that code building a credential with `injection`
   * alone still compiles and stores what it set — read it through `injectionsOf`.
   */
  injections?: Injection[] | undefined;
  status: CredentialStatus;
  expiresAt: string | null;
  subject: string | null;
  /** The OAuth app its tokens come from (connect, refresh); null for credentials stored by hand. */
  oauthAppId: string | null;
  dataKeyId: string;
  version: number;
  secretFields: string[];
  createdAt: string;
  updatedAt: string;
}

type Row = Selectable<CredentialTable> & { ciphertexts: string };

const toCredential = (row: Row): Credential => {
  const injections = parseStoredInjections(row.injection);
  return {
    id: row.id,
    namespace: row.namespace,
    name: row.name,
    type: row.type as CredentialType,
    description: row.description,
    scopes: JSON.parse(row.scopes) as string[],
    allowedHosts: JSON.parse(row.allowed_hosts) as string[],
    baseUrl: row.base_url,
    injection: injections[0] as Injection,
    injections,
    status: row.status as CredentialStatus,
    expiresAt: row.expires_at,
    subject: row.subject,
    oauthAppId: row.oauth_app_id,
    dataKeyId: row.data_key_id,
    version: row.current_version,
    secretFields: Object.keys(JSON.parse(row.ciphertexts) as object).sort(),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
};

export const toRow = (c: Omit<Credential, 'secretFields'>): CredentialTable => ({
  id: c.id,
  namespace: c.namespace,
  name: c.name,
  type: c.type,
  description: c.description,
  scopes: JSON.stringify(c.scopes),
  allowed_hosts: JSON.stringify(c.allowedHosts),
  base_url: c.baseUrl,
  injection: storedInjections(injectionsOf(c)),
  status: c.status,
  expires_at: c.expiresAt,
  subject: c.subject,
  oauth_app_id: c.oauthAppId,
  data_key_id: c.dataKeyId,
  current_version: c.version,
  created_at: c.createdAt,
  updated_at: c.updatedAt,
});

const selectWithCurrentVersion = (db: Db) =>
  db
    .selectFrom('credentials as c')
    .innerJoin('credential_versions as v', (join) =>
      join.onRef('v.credential_id', '=', 'c.id').onRef('v.version', '=', 'c.current_version'),
    )
    .selectAll('c')
    .select('v.ciphertexts');

export const credentialRepo = {
  /**
   * Every credential of that name (one per subject, and perhaps a shared one); the caller picks with
   * `selectBySubject`.
   */
  async findAllByName(
    db: Db,
    namespace: string,
    name: string,
  ): Promise<(Credential & { ciphertexts: string })[]> {
    const rows = await selectWithCurrentVersion(db)
      .where('c.namespace', '=', namespace)
      .where('c.name', '=', name)
      .limit(1000)
      .execute();
    return rows.map((row) => ({ ...toCredential(row), ciphertexts: row.ciphertexts }));
  },

  async findById(db: Db, id: string): Promise<(Credential & { ciphertexts: string }) | undefined> {
    const row = await selectWithCurrentVersion(db).where('c.id', '=', id).executeTakeFirst();
    return row ? { ...toCredential(row), ciphertexts: row.ciphertexts } : undefined;
  },

  async list(
    db: Db,
    namespace: string,
    options: { limit: number; after?: string | undefined },
  ): Promise<Credential[]> {
    let query = selectWithCurrentVersion(db).where('c.namespace', '=', namespace);
    if (options.after !== undefined) query = query.where('c.name', '>', options.after);
    const rows = await query.orderBy('c.name').limit(options.limit).execute();
    return rows.map(toCredential);
  },

  insert: (db: Db, row: CredentialTable) => db.insertInto('credentials').values(row).execute(),

  update: (db: Db, id: string, row: Partial<CredentialTable>) =>
    db.updateTable('credentials').set(row).where('id', '=', id).execute(),

  remove: (db: Db, id: string) => db.deleteFrom('credentials').where('id', '=', id).execute(),

  insertVersion: (
    db: Db,
    credentialId: string,
    version: number,
    ciphertexts: Record<string, string>,
    now: string,
  ) =>
    db
      .insertInto('credential_versions')
      .values({
        credential_id: credentialId,
        version,
        ciphertexts: JSON.stringify(ciphertexts),
        created_at: now,
      })
      .execute(),

  async findVersion(
    db: Db,
    credentialId: string,
    version: number,
  ): Promise<Record<string, string> | undefined> {
    const row = await db
      .selectFrom('credential_versions')
      .select('ciphertexts')
      .where('credential_id', '=', credentialId)
      .where('version', '=', version)
      .executeTakeFirst();
    return row ? (JSON.parse(row.ciphertexts) as Record<string, string>) : undefined;
  },

  listVersions: (db: Db, credentialId: string) =>
    db
      .selectFrom('credential_versions')
      .select(['version', 'created_at'])
      .where('credential_id', '=', credentialId)
      .orderBy('version', 'desc')
      .execute(),

  removeVersionsBelow: (db: Db, credentialId: string, version: number) =>
    db
      .deleteFrom('credential_versions')
      .where('credential_id', '=', credentialId)
      .where('version', '<', version)
      .executeTakeFirst(),

  removeAllVersions: (db: Db, credentialId: string) =>
    db.deleteFrom('credential_versions').where('credential_id', '=', credentialId).execute(),
};

/**
 * What decrypting a credential's current secret needs, in one read: its type and injection (and, for
 * the HTTP proxy, its base URL and allowed hosts), the current version's ciphertexts, and its wrapped
 * data key. Prepared: it runs on every agent retrieval.
 */
export const prepareCurrentSecret = (store: Pick<Store, 'db' | 'prepare'>) =>
  store.prepare((p: Params<{ namespace: string; id: string }>) =>
    store.db
      .selectFrom('credentials as c')
      .innerJoin('credential_versions as v', (join) =>
        join.onRef('v.credential_id', '=', 'c.id').onRef('v.version', '=', 'c.current_version'),
      )
      .innerJoin('data_keys as d', 'd.id', 'c.data_key_id')
      .select([
        'c.id',
        'c.type',
        'c.injection',
        'c.allowed_hosts',
        'c.base_url',
        'c.subject',
        'c.data_key_id',
        'c.current_version',
        'v.ciphertexts',
        'd.wrapped_key',
        'd.kek_ref',
      ])
      .where('c.namespace', '=', p('namespace'))
      .where('c.id', '=', p('id')),
  );
