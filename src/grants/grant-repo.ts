import type { Kysely, Selectable, Transaction } from 'kysely';
import { selectBySubject } from '../credentials/subject-selection.js';
import { VaultError } from '../errors/vault-error.js';
import type { Store } from '../store/database.js';
import { accessScope, type GenerationCache } from '../store/generation-cache.js';
import type { Params } from '../store/prepared.js';
import type { Database, GrantTable } from '../store/schema.js';
import type { Grant, GrantDetails, RevokeReason } from './grant-types.js';

export type Db = Kysely<Database> | Transaction<Database>;

/** Rows per `IN (…)` list: far below SQLite's and PostgreSQL's parameter limits. */
const chunkSize = 500;

const chunks = <T>(items: readonly T[]): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += chunkSize) out.push(items.slice(i, i + chunkSize));
  return out;
};

const toGrant = (row: Selectable<GrantTable>): Grant => ({
  id: row.id,
  namespace: row.namespace,
  agentId: row.agent_id,
  credentialId: row.credential_id,
  scopes: JSON.parse(row.scopes) as string[],
  reveal: Number(row.reveal) === 1,
  expiresAt: row.expires_at,
  createdAt: row.created_at,
  createdBy: row.created_by,
  revokedAt: row.revoked_at,
  revokedReason: row.revoked_reason,
});

const toGrantRow = (g: Grant): GrantTable => ({
  id: g.id,
  namespace: g.namespace,
  agent_id: g.agentId,
  credential_id: g.credentialId,
  scopes: JSON.stringify(g.scopes),
  reveal: g.reveal ? 1 : 0,
  expires_at: g.expiresAt,
  created_at: g.createdAt,
  created_by: g.createdBy,
  revoked_at: g.revokedAt,
  revoked_reason: g.revokedReason,
});

/** Grants with the agent's and the credential's names; left joins, since either may be gone. */
const selectDetails = (db: Db) =>
  db
    .selectFrom('grants as g')
    .leftJoin('agents as a', 'a.id', 'g.agent_id')
    .leftJoin('credentials as c', 'c.id', 'g.credential_id')
    .selectAll('g')
    .select(['a.name as agent_name', 'c.name as credential_name']);

const toDetails = (
  row: Selectable<GrantTable> & { agent_name: string | null; credential_name: string | null },
): GrantDetails => ({ ...toGrant(row), agentName: row.agent_name, credentialName: row.credential_name });

/** A grant by id, with the agent and the credential it is about. */
export interface GrantSubjects {
  id: string;
  agentId: string;
  agentName: string;
  credentialId: string;
  credentialName: string;
}

export interface GrantListFilter {
  agentId?: string | undefined;
  credentialId?: string | undefined;
  /** Only grants live at this time (not revoked, not expired). */
  liveAt?: string | undefined;
  limit: number;
  /** Keyset cursor: the (created_at, id) of the last row of the previous page. */
  after?: { createdAt: string; id: string } | undefined;
}

export const grantRepo = {
  insert: (db: Db, grant: Grant) => db.insertInto('grants').values(toGrantRow(grant)).execute(),

  /** Several grants in one statement per `chunkSize` (11 columns a row: far below the limits). */
  async insertMany(db: Db, grants: readonly Grant[]): Promise<void> {
    for (const chunk of chunks(grants)) await db.insertInto('grants').values(chunk.map(toGrantRow)).execute();
  },

  /** The grants not yet revoked for any of these agent × credential pairs, in one read. */
  async unrevokedForPairs(
    db: Db,
    namespace: string,
    pairs: readonly { agentId: string; credentialId: string }[],
  ): Promise<Pick<Grant, 'id' | 'agentId' | 'credentialId'>[]> {
    if (pairs.length === 0) return [];
    const wanted = new Set(pairs.map((p) => `${p.agentId}\u0000${p.credentialId}`));
    const rows = await db
      .selectFrom('grants')
      .select(['id', 'agent_id', 'credential_id'])
      .where('namespace', '=', namespace)
      .where('agent_id', 'in', [...new Set(pairs.map((p) => p.agentId))])
      .where('credential_id', 'in', [...new Set(pairs.map((p) => p.credentialId))])
      .where('revoked_at', 'is', null)
      .orderBy('created_at')
      .execute();
    return rows
      .map((r) => ({ id: r.id, agentId: r.agent_id, credentialId: r.credential_id }))
      .filter((g) => wanted.has(`${g.agentId}\u0000${g.credentialId}`));
  },

  async findById(db: Db, namespace: string, id: string): Promise<GrantDetails | undefined> {
    const row = await selectDetails(db)
      .where('g.namespace', '=', namespace)
      .where('g.id', '=', id)
      .executeTakeFirst();
    return row ? toDetails(row) : undefined;
  },

  async list(db: Db, namespace: string, filter: GrantListFilter): Promise<GrantDetails[]> {
    let query = selectDetails(db).where('g.namespace', '=', namespace);
    if (filter.agentId !== undefined) query = query.where('g.agent_id', '=', filter.agentId);
    if (filter.credentialId !== undefined) query = query.where('g.credential_id', '=', filter.credentialId);
    if (filter.liveAt !== undefined) {
      const at = filter.liveAt;
      query = query
        .where('g.revoked_at', 'is', null)
        .where((eb) => eb.or([eb('g.expires_at', 'is', null), eb('g.expires_at', '>', at)]));
    }
    if (filter.after !== undefined) {
      const { createdAt, id } = filter.after;
      query = query.where((eb) =>
        eb.or([
          eb('g.created_at', '>', createdAt),
          eb.and([eb('g.created_at', '=', createdAt), eb('g.id', '>', id)]),
        ]),
      );
    }
    const rows = await query.orderBy('g.created_at').orderBy('g.id').limit(filter.limit).execute();
    return rows.map(toDetails);
  },

  /**
   * The grants not yet revoked, for an agent, a credential or both, with the agent and credential
   * each is about (a revocation's audit event names them).
   */
  async unrevoked(
    db: Db,
    namespace: string,
    filter: { agentId?: string; credentialId?: string },
    limit?: number,
  ): Promise<GrantSubjects[]> {
    let query = db
      .selectFrom('grants as g')
      .innerJoin('agents as a', 'a.id', 'g.agent_id')
      .innerJoin('credentials as c', 'c.id', 'g.credential_id')
      .select([
        'g.id',
        'a.id as agentId',
        'a.name as agentName',
        'c.id as credentialId',
        'c.name as credentialName',
      ])
      .where('g.namespace', '=', namespace)
      .where('g.revoked_at', 'is', null);
    if (filter.agentId !== undefined) query = query.where('g.agent_id', '=', filter.agentId);
    if (filter.credentialId !== undefined) query = query.where('g.credential_id', '=', filter.credentialId);
    if (limit !== undefined) query = query.limit(limit);
    return query.orderBy('g.created_at').execute();
  },

  /**
   * The grants live at `at` for any of these agent × credential pairs, in one read (a batch of an
   * import checks what is already in place with it). Pairs: a few dozen at most.
   */
  async liveForPairs(
    db: Db,
    namespace: string,
    pairs: readonly { agentId: string; credentialId: string }[],
    at: string,
  ): Promise<Grant[]> {
    if (pairs.length === 0) return [];
    const wanted = new Set(pairs.map((p) => `${p.agentId}\u0000${p.credentialId}`));
    const rows = await db
      .selectFrom('grants')
      .selectAll()
      .where('namespace', '=', namespace)
      .where('agent_id', 'in', [...new Set(pairs.map((p) => p.agentId))])
      .where('credential_id', 'in', [...new Set(pairs.map((p) => p.credentialId))])
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', at)]))
      .execute();
    return rows.map(toGrant).filter((g) => wanted.has(`${g.agentId}\u0000${g.credentialId}`));
  },

  /** Marks the grants revoked (those not revoked already); returns how many changed. */
  async revoke(db: Db, ids: readonly string[], at: string, reason: RevokeReason): Promise<number> {
    let changed = 0;
    for (const chunk of chunks(ids)) {
      const result = await db
        .updateTable('grants')
        .set({ revoked_at: at, revoked_reason: reason })
        .where('id', 'in', chunk)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      changed += Number(result.numUpdatedRows);
    }
    return changed;
  },

  /** Deletes an agent's grants (the agent is being deleted); returns how many went. */
  async removeForAgent(db: Db, agentId: string): Promise<number> {
    const result = await db.deleteFrom('grants').where('agent_id', '=', agentId).executeTakeFirst();
    return Number(result.numDeletedRows);
  },

  /** Deletes a credential's grants (the credential is being deleted); returns how many went. */
  async removeForCredential(db: Db, credentialId: string): Promise<number> {
    const result = await db.deleteFrom('grants').where('credential_id', '=', credentialId).executeTakeFirst();
    return Number(result.numDeletedRows);
  },

  /**
   * The kill switch's half on grants: grants of the namespace not yet revoked, at most `limit` of
   * them (one batch); returns how many changed.
   */
  async revokeNamespace(db: Db, namespace: string, at: string, limit: number): Promise<number> {
    const result = await db
      .updateTable('grants')
      .set({ revoked_at: at, revoked_reason: 'revoke_all' satisfies RevokeReason })
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('grants')
          .select('id')
          .where('namespace', '=', namespace)
          .where('revoked_at', 'is', null)
          .limit(limit),
      )
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  },
};

/**
 * An agent's grants for a credential named so, with the credential's status: what the retrieval
 * decision needs. Empty when there is no grant or no such credential (the caller must not be able to
 * tell the two apart). Prepared: it runs on every agent retrieval.
 */
export const prepareRetrievalGrants = (store: Pick<Store, 'db' | 'prepare'>, access: GenerationCache) => {
  const query = store.prepare((p: Params<{ namespace: string; agentId: string; name: string }>) =>
    store.db
      .selectFrom('grants as g')
      .innerJoin('credentials as c', 'c.id', 'g.credential_id')
      .selectAll('g')
      .select([
        'c.status as credential_status',
        'c.expires_at as credential_expires_at',
        'c.subject as credential_subject',
      ])
      .where('g.namespace', '=', p('namespace'))
      .where('g.agent_id', '=', p('agentId'))
      .where('c.namespace', '=', p('namespace'))
      .where('c.name', '=', p('name')),
  );
  type Key = { namespace: string; agentId: string; name: string; endUser?: string | undefined };
  return access.lookup({
    key: ({ namespace, agentId, name, endUser }: Key) =>
      `${namespace}\u0000${agentId}\u0000${name}\u0000${endUser === undefined ? '' : `u:${endUser}`}`,
    load: async ({ endUser, ...params }: Key) => {
      const rows = await query.all(params);
      // Per-user credentials: among the credentials of that name this agent holds grants for, the
      // end user's (never another's, nor the shared one: a user without a connection of their own
      // is asked to connect); without a user, the shared one or the only one
      // (subject-selection.ts). Credentials it has no grant for are never looked at, so the answer
      // says nothing about other users' connections.
      const candidates = [
        ...new Map(
          rows.map((row) => [row.credential_id, { id: row.credential_id, subject: row.credential_subject }]),
        ).values(),
      ];
      const selected = selectBySubject(candidates, endUser, { fallbackToShared: false });
      const chosen = selected.found ? rows.filter((row) => row.credential_id === selected.found.id) : [];
      const first = chosen[0];
      return {
        grants: chosen.map(toGrant),
        credential: first
          ? {
              id: first.credential_id,
              status: first.credential_status,
              expiresAt: first.credential_expires_at,
            }
          : undefined,
        /** Several users hold a credential of that name and the request named none. */
        ambiguous: !selected.found && selected.ambiguous,
      };
    },
    // Every name an agent asks for, granted or not, takes an entry: bounded.
    maxEntries: 50_000,
    // Grants and which credential the name means (its subject included, migration 0008) are
    // namespace-wide; the credential's status and expiry are its own, so a disabled credential drops
    // only its grants' entries, and a new secret version (a token refresh) drops none.
    scopes: ({ namespace }, { credential }) =>
      credential
        ? [accessScope.namespace(namespace), accessScope.grantedCredential(credential.id)]
        : [accessScope.namespace(namespace)],
    name: 'grants',
  });
};

/** Agents and credentials as grants refer to them: looked up by id or name, no secret involved. */
export const grantTargets = {
  /** By id or by name; an id match wins should another agent be named like that id. */
  async findAgent(db: Db, namespace: string, ref: string) {
    const rows = await db
      .selectFrom('agents')
      .select(['id', 'name', 'status'])
      .where('namespace', '=', namespace)
      .where((eb) => eb.or([eb('id', '=', ref), eb('name', '=', ref)]))
      .limit(2)
      .execute();
    return rows.find((row) => row.id === ref) ?? rows[0];
  },

  /** By name and, for per-user credentials, the user (subject-selection.ts; never the shared one for a user). */
  async findCredential(db: Db, namespace: string, name: string, user?: string) {
    const rows = await db
      .selectFrom('credentials')
      .select(['id', 'name', 'scopes', 'subject'])
      .where('namespace', '=', namespace)
      .where('name', '=', name)
      .limit(1000)
      .execute();
    const selected = selectBySubject(rows, user, { fallbackToShared: false });
    if (!selected.found && selected.ambiguous) {
      throw new VaultError(
        'end_user_required',
        `Several users hold a credential named "${name.slice(0, 64)}": name one (\`--user\`, \`user\`).`,
      );
    }
    const row = selected.found;
    return row ? { id: row.id, name: row.name, scopes: JSON.parse(row.scopes) as string[] } : undefined;
  },
};
