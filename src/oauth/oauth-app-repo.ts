import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, OAuthAppTable } from '../store/schema.js';
import type { ProviderAppSettings } from './provider-template.js';
import type { McpClientRegistration } from './mcp-discovery.js';
import type { ProviderEntry } from './provider-schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** What an app's `settings` column holds besides the catalog's own data. */
export interface StoredAppSettings extends ProviderAppSettings {
  /** The client authentication method chosen at add time (oidc/generic apps); the entry's otherwise. */
  clientAuth?: ProviderEntry['clientAuth'];
  /** Whether the provider supports PKCE S256 (from discovery for oidc apps). */
  pkce?: ProviderEntry['pkce'];
  /** RFC 8707: the resource sent on every authorization and token request (MCP servers). */
  resource?: string;
  /**
   * The flows an agent's `authorization_required` may start, in the operator's order of preference
   * (the first when the agent names none). Absent: the browser flow, or the device flow for an app
   * with no authorization endpoint.
   */
  agentConnectFlows?: AgentConnectFlow[];
  /** Apps from MCP discovery: how the vault became the server's client (mcp-discovery.ts). */
  registration?: McpClientRegistration;
}

/** The consent flows an agent may start for its user. */
export type AgentConnectFlow = 'browser' | 'device';

/** An OAuth app without its secret. */
export interface OAuthApp {
  id: string;
  namespace: string;
  name: string;
  provider: string;
  clientId: string;
  hasClientSecret: boolean;
  dataKeyId: string;
  issuer: string | null;
  scopes: string[];
  settings: StoredAppSettings;
  /** Agents may ask a user to connect through this app (`authorization_required`). */
  agentConnect: boolean;
  /** Through which flows, preferred first; empty when agents may not. */
  agentConnectFlows: AgentConnectFlow[];
  createdAt: string;
  updatedAt: string;
}

export type OAuthAppRow = Selectable<OAuthAppTable>;

/** The flows agents may start through an app, as its settings say or by default. */
const agentConnectFlowsOf = (row: OAuthAppRow, settings: StoredAppSettings): AgentConnectFlow[] => {
  if (Number(row.agent_connect) !== 1) return [];
  if (settings.agentConnectFlows && settings.agentConnectFlows.length > 0) return settings.agentConnectFlows;
  // Catalog and discovered apps have an authorization endpoint; a generic app may have only a device one.
  return settings.endpoints?.authorization || row.provider !== 'generic' ? ['browser'] : ['device'];
};

export const toOAuthApp = (row: OAuthAppRow): OAuthApp => ({
  id: row.id,
  namespace: row.namespace,
  name: row.name,
  provider: row.provider,
  clientId: row.client_id,
  hasClientSecret: row.client_secret !== null,
  dataKeyId: row.data_key_id,
  issuer: row.issuer,
  scopes: JSON.parse(row.scopes) as string[],
  settings: JSON.parse(row.settings) as StoredAppSettings,
  agentConnect: Number(row.agent_connect) === 1,
  agentConnectFlows: agentConnectFlowsOf(row, JSON.parse(row.settings) as StoredAppSettings),
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export const oauthAppRepo = {
  findByName: (db: Db, namespace: string, name: string) =>
    db
      .selectFrom('oauth_apps')
      .selectAll()
      .where('namespace', '=', namespace)
      .where('name', '=', name)
      .executeTakeFirst(),

  findById: (db: Db, namespace: string, id: string) =>
    db
      .selectFrom('oauth_apps')
      .selectAll()
      .where('namespace', '=', namespace)
      .where('id', '=', id)
      .executeTakeFirst(),

  list: (db: Db, namespace: string) =>
    db.selectFrom('oauth_apps').selectAll().where('namespace', '=', namespace).orderBy('name').execute(),

  insert: (db: Db, row: OAuthAppTable) => db.insertInto('oauth_apps').values(row).execute(),

  remove: (db: Db, id: string) => db.deleteFrom('oauth_apps').where('id', '=', id).execute(),

  async credentialsUsing(db: Db, id: string): Promise<number> {
    const row = await db
      .selectFrom('credentials')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('oauth_app_id', '=', id)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  },

  /** The app a credential's tokens come from, by the credential's id. */
  findForCredential: (db: Db, namespace: string, credentialId: string) =>
    db
      .selectFrom('credentials as c')
      .innerJoin('oauth_apps as a', 'a.id', 'c.oauth_app_id')
      .selectAll('a')
      .where('c.namespace', '=', namespace)
      .where('c.id', '=', credentialId)
      .executeTakeFirst(),
};
