import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, McpProxyKeyTable, McpProxyTable } from '../store/schema.js';
import type { ProxyConfig, ProxyInjection, ProxyTransport } from './proxy-rules.js';

export type Db = Kysely<Database> | Transaction<Database>;

/** An MCP proxy as the vault uses it: its configuration and where it lives. */
export interface McpProxy extends ProxyConfig {
  id: string;
  namespace: string;
  name: string;
  description: string;
  createdAt: string;
  updatedAt: string;
}

/** A proxy key as listed: never the key itself, nor its hash. */
export interface McpProxyKey {
  id: string;
  proxyId: string;
  agentId: string;
  endUser: string | null;
  name: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export const toProxy = (row: Selectable<McpProxyTable>): McpProxy => ({
  id: row.id,
  namespace: row.namespace,
  name: row.name,
  description: row.description,
  transport: row.transport as ProxyTransport,
  url: row.url,
  command: row.command,
  args: JSON.parse(row.args) as string[],
  cwd: row.cwd,
  credential: row.credential_name,
  perUser: row.per_user === 1,
  injections: JSON.parse(row.injections) as ProxyInjection[],
  allowTools: JSON.parse(row.allow_tools) as string[],
  denyTools: JSON.parse(row.deny_tools) as string[],
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export const toProxyKey = (row: Selectable<McpProxyKeyTable>): McpProxyKey => ({
  id: row.id,
  proxyId: row.proxy_id,
  agentId: row.agent_id,
  endUser: row.end_user,
  name: row.name,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  revokedAt: row.revoked_at,
  lastUsedAt: row.last_used_at,
});

/** The stored columns of a configuration (JSON as text). */
export const configColumns = (config: ProxyConfig) => ({
  transport: config.transport,
  url: config.url,
  command: config.command,
  args: JSON.stringify(config.args),
  cwd: config.cwd,
  credential_name: config.credential,
  per_user: config.perUser ? 1 : 0,
  injections: JSON.stringify(config.injections),
  allow_tools: JSON.stringify(config.allowTools),
  deny_tools: JSON.stringify(config.denyTools),
});

export const proxyRepo = {
  async findByName(db: Db, namespace: string, name: string): Promise<McpProxy | undefined> {
    const row = await db
      .selectFrom('mcp_proxies')
      .selectAll()
      .where('namespace', '=', namespace)
      .where('name', '=', name)
      .executeTakeFirst();
    return row ? toProxy(row) : undefined;
  },

  async findById(db: Db, id: string): Promise<McpProxy | undefined> {
    const row = await db.selectFrom('mcp_proxies').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toProxy(row) : undefined;
  },

  async list(db: Db, namespace: string): Promise<McpProxy[]> {
    const rows = await db
      .selectFrom('mcp_proxies')
      .selectAll()
      .where('namespace', '=', namespace)
      .orderBy('name')
      .execute();
    return rows.map(toProxy);
  },

  insert: (db: Db, row: McpProxyTable) => db.insertInto('mcp_proxies').values(row).execute(),

  update: (db: Db, id: string, row: Partial<Omit<McpProxyTable, 'id' | 'namespace' | 'created_at'>>) =>
    db.updateTable('mcp_proxies').set(row).where('id', '=', id).returningAll().executeTakeFirstOrThrow(),

  /** The proxy with its keys, pinned tools and sessions. */
  async remove(db: Db, id: string): Promise<{ keys: number }> {
    const keys = await db.deleteFrom('mcp_proxy_keys').where('proxy_id', '=', id).executeTakeFirst();
    await db.deleteFrom('mcp_proxy_tools').where('proxy_id', '=', id).execute();
    await db.deleteFrom('mcp_sessions').where('proxy_id', '=', id).execute();
    await db.deleteFrom('mcp_proxies').where('id', '=', id).execute();
    return { keys: Number(keys.numDeletedRows) };
  },
};

export const proxyKeyRepo = {
  insert: (db: Db, row: McpProxyKeyTable) => db.insertInto('mcp_proxy_keys').values(row).execute(),

  async listForProxy(db: Db, proxyId: string): Promise<McpProxyKey[]> {
    const rows = await db
      .selectFrom('mcp_proxy_keys')
      .selectAll()
      .where('proxy_id', '=', proxyId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toProxyKey);
  },

  find: (db: Db, proxyId: string, keyId: string) =>
    db
      .selectFrom('mcp_proxy_keys')
      .selectAll()
      .where('proxy_id', '=', proxyId)
      .where('id', '=', keyId)
      .executeTakeFirst(),

  /** The key with that hash, for authentication. */
  findByHash: (db: Db, keyHash: string) =>
    db.selectFrom('mcp_proxy_keys').selectAll().where('key_hash', '=', keyHash).executeTakeFirst(),

  revoke: (db: Db, proxyId: string, keyId: string, now: string) =>
    db
      .updateTable('mcp_proxy_keys')
      .set({ revoked_at: now })
      .where('proxy_id', '=', proxyId)
      .where('id', '=', keyId)
      .where('revoked_at', 'is', null)
      .returningAll()
      .executeTakeFirst(),

  /** An agent's keys with their sessions: a key must not outlive its agent. */
  async removeForAgent(db: Db, agentId: string): Promise<number> {
    const keys = db.selectFrom('mcp_proxy_keys').select('id').where('agent_id', '=', agentId);
    await db.deleteFrom('mcp_sessions').where('key_id', 'in', keys).execute();
    const deleted = await db.deleteFrom('mcp_proxy_keys').where('agent_id', '=', agentId).executeTakeFirst();
    return Number(deleted.numDeletedRows);
  },

  /** Bookkeeping only (no trigger listens to it): written at most once a minute per key. */
  touch: (db: Db, keyId: string, now: string, before: string) =>
    db
      .updateTable('mcp_proxy_keys')
      .set({ last_used_at: now })
      .where('id', '=', keyId)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', before)]))
      .execute(),
};
