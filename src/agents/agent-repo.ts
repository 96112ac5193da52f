import type { Kysely, Selectable, Transaction } from 'kysely';
import type {
  AgentKeyTable,
  AgentTable,
  Database,
  TrustedIssuerTable,
  WorkloadBindingTable,
} from '../store/schema.js';
import type { Store } from '../store/database.js';
import type { Params } from '../store/prepared.js';
import type { Agent, AgentKey, AgentStatus, TrustedIssuer, WorkloadBinding } from './agent-types.js';
import { isAgentId } from './agent-rules.js';

export type Db = Kysely<Database> | Transaction<Database>;

export const toAgent = (row: Selectable<AgentTable>): Agent => ({
  id: row.id,
  namespace: row.namespace,
  name: row.name,
  description: row.description,
  status: row.status as AgentStatus,
  jwks: row.jwks === null ? null : (JSON.parse(row.jwks) as Agent['jwks']),
  jwksUrl: row.jwks_url,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export const toAgentKey = (row: Selectable<AgentKeyTable>): AgentKey => ({
  id: row.id,
  agentId: row.agent_id,
  name: row.name,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  revokedAt: row.revoked_at,
  lastUsedAt: row.last_used_at,
});

export const toTrustedIssuer = (row: Selectable<TrustedIssuerTable>): TrustedIssuer => ({
  id: row.id,
  namespace: row.namespace,
  name: row.name,
  issuer: row.issuer,
  audience: row.audience,
  createdAt: row.created_at,
});

export const toBinding = (row: Selectable<WorkloadBindingTable>): WorkloadBinding => ({
  id: row.id,
  namespace: row.namespace,
  issuerId: row.issuer_id,
  agentId: row.agent_id,
  claims: JSON.parse(row.claims) as Record<string, string>,
  createdAt: row.created_at,
});

export const agentRepo = {
  async findById(db: Db, id: string): Promise<Agent | undefined> {
    const row = await db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toAgent(row) : undefined;
  },

  /** By id when `ref` has the shape of one, otherwise by name; always within the namespace. */
  async findByRef(db: Db, namespace: string, ref: string): Promise<Agent | undefined> {
    const row = await db
      .selectFrom('agents')
      .selectAll()
      .where('namespace', '=', namespace)
      .where(isAgentId(ref) ? 'id' : 'name', '=', ref)
      .executeTakeFirst();
    return row ? toAgent(row) : undefined;
  },

  async list(
    db: Db,
    namespace: string,
    options: { limit: number; after?: string | undefined },
  ): Promise<Agent[]> {
    let query = db.selectFrom('agents').selectAll().where('namespace', '=', namespace);
    if (options.after !== undefined) query = query.where('name', '>', options.after);
    const rows = await query.orderBy('name').limit(options.limit).execute();
    return rows.map(toAgent);
  },

  insert: (db: Db, row: AgentTable) => db.insertInto('agents').values(row).execute(),

  update: (db: Db, id: string, row: Partial<Omit<AgentTable, 'id' | 'namespace' | 'created_at'>>) =>
    db.updateTable('agents').set(row).where('id', '=', id).returningAll().executeTakeFirstOrThrow(),

  remove: (db: Db, id: string) => db.deleteFrom('agents').where('id', '=', id).execute(),
};

export const agentKeyRepo = {
  insert: (db: Db, row: AgentKeyTable) => db.insertInto('agent_keys').values(row).execute(),

  async listForAgent(db: Db, agentId: string): Promise<AgentKey[]> {
    const rows = await db
      .selectFrom('agent_keys')
      .selectAll()
      .where('agent_id', '=', agentId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toAgentKey);
  },

  async countLive(db: Db, agentId: string, now: string): Promise<number> {
    const row = await db
      .selectFrom('agent_keys')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('agent_id', '=', agentId)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  },

  /** The key with that hash and its agent, for authentication. */
  find: (db: Db, agentId: string, keyId: string) =>
    db
      .selectFrom('agent_keys')
      .selectAll()
      .where('agent_id', '=', agentId)
      .where('id', '=', keyId)
      .executeTakeFirst(),

  revoke: (db: Db, agentId: string, keyId: string, now: string) =>
    db
      .updateTable('agent_keys')
      .set({ revoked_at: now })
      .where('agent_id', '=', agentId)
      .where('id', '=', keyId)
      .where('revoked_at', 'is', null)
      .returningAll()
      .executeTakeFirst(),

  /**
   * For the namespace-wide kill switch (`tokenvault revoke-all`): revokes every live agent key of the
   * namespace and returns how many. Call it inside the kill switch's transaction.
   */
  async revokeAllInNamespace(db: Db, namespace: string, now: string): Promise<number> {
    const result = await db
      .updateTable('agent_keys')
      .set({ revoked_at: now })
      .where('namespace', '=', namespace)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  },

  touch: (db: Db, keyId: string, now: string) =>
    db.updateTable('agent_keys').set({ last_used_at: now }).where('id', '=', keyId).execute(),

  removeForAgent: (db: Db, agentId: string) =>
    db.deleteFrom('agent_keys').where('agent_id', '=', agentId).executeTakeFirst(),
};

export const issuerRepo = {
  async findByName(db: Db, namespace: string, name: string): Promise<TrustedIssuer | undefined> {
    const row = await db
      .selectFrom('trusted_issuers')
      .selectAll()
      .where('namespace', '=', namespace)
      .where('name', '=', name)
      .executeTakeFirst();
    return row ? toTrustedIssuer(row) : undefined;
  },

  async findByIssuer(db: Db, issuer: string, namespace?: string): Promise<TrustedIssuer[]> {
    let query = db.selectFrom('trusted_issuers').selectAll().where('issuer', '=', issuer);
    if (namespace !== undefined) query = query.where('namespace', '=', namespace);
    return (await query.orderBy('id').execute()).map(toTrustedIssuer);
  },

  async list(db: Db, namespace: string): Promise<TrustedIssuer[]> {
    const rows = await db
      .selectFrom('trusted_issuers')
      .selectAll()
      .where('namespace', '=', namespace)
      .orderBy('name')
      .execute();
    return rows.map(toTrustedIssuer);
  },

  insert: (db: Db, row: TrustedIssuerTable) => db.insertInto('trusted_issuers').values(row).execute(),

  remove: (db: Db, id: string) => db.deleteFrom('trusted_issuers').where('id', '=', id).execute(),
};

export const bindingRepo = {
  insert: (db: Db, row: WorkloadBindingTable) => db.insertInto('workload_bindings').values(row).execute(),

  async listForIssuers(db: Db, issuerIds: string[]): Promise<WorkloadBinding[]> {
    if (issuerIds.length === 0) return [];
    const rows = await db
      .selectFrom('workload_bindings')
      .selectAll()
      .where('issuer_id', 'in', issuerIds)
      .orderBy('id')
      .execute();
    return rows.map(toBinding);
  },

  listForAgent: (db: Db, agentId: string) =>
    db
      .selectFrom('workload_bindings as b')
      .innerJoin('trusted_issuers as i', 'i.id', 'b.issuer_id')
      .selectAll('b')
      .select('i.name as issuer_name')
      .where('b.agent_id', '=', agentId)
      .orderBy('b.created_at')
      .orderBy('b.id')
      .execute(),

  find: (db: Db, agentId: string, id: string) =>
    db
      .selectFrom('workload_bindings')
      .selectAll()
      .where('agent_id', '=', agentId)
      .where('id', '=', id)
      .executeTakeFirst(),

  remove: (db: Db, id: string) => db.deleteFrom('workload_bindings').where('id', '=', id).execute(),

  removeForAgent: (db: Db, agentId: string) =>
    db.deleteFrom('workload_bindings').where('agent_id', '=', agentId).executeTakeFirst(),

  removeForIssuer: (db: Db, issuerId: string) =>
    db.deleteFrom('workload_bindings').where('issuer_id', '=', issuerId).executeTakeFirst(),
};

/**
 * An API key by its hash, with its agent: what authenticating it needs. Prepared: it runs on every
 * request an agent makes with a key.
 */
export const prepareKeyByHash = (store: Pick<Store, 'db' | 'prepare'>) =>
  store.prepare((p: Params<{ hash: string }>) =>
    store.db
      .selectFrom('agent_keys as k')
      .innerJoin('agents as a', 'a.id', 'k.agent_id')
      .select([
        'k.id as key_id',
        'k.key_hash',
        'k.expires_at',
        'k.revoked_at',
        'k.namespace as key_namespace',
        'a.id as agent_id',
        'a.namespace',
        'a.name as agent_name',
        'a.status as agent_status',
      ])
      .where('k.key_hash', '=', p('hash')),
  );
