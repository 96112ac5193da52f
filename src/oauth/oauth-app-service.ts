import { type AuditContext, auditedChange, type AuditSpec, systemContext } from '../audit/audit-context.js';
import type { AuditAction, AuditRecorder } from '../audit/audit-types.js';
import { assertNamespace, validateScopes } from '../credentials/credential-types.js';
import { decryptField, encryptField } from '../crypto/envelope.js';
import { VaultError } from '../errors/vault-error.js';
import type { DataKeyService } from '../keys/data-key-service.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Store } from '../store/database.js';
import { isUniqueViolation } from '../store/store-errors.js';
import {
  type AgentConnectFlow,
  type OAuthApp,
  oauthAppRepo,
  type OAuthAppRow,
  type StoredAppSettings,
  toOAuthApp,
} from './oauth-app-repo.js';
import {
  clientIdMetadataUrlFor,
  clientMetadataDocument,
  type ClientMetadataDocument,
} from './client-metadata-document.js';
import type {
  DiscoveredMcpServer,
  McpClientRegistration,
  McpDiscoveryDeps,
  McpRegistrationChoice,
} from './mcp-discovery.js';
import type { DiscoveredIssuer } from './oauth-discovery.js';
import type { ProviderCatalog } from './provider-catalog.js';
import type { ProviderEndpoints, ProviderEntry } from './provider-schema.js';
import { ProviderSettingsError, resolveEndpoints, resolveParameters } from './provider-template.js';
import type { OAuthClientApp } from './token-client.js';

export interface AddOAuthAppInput {
  /** A catalog name, `oidc` (with `issuer`) or `generic` (with `endpoints`). */
  provider: string;
  /** Defaults to the provider's name. */
  name?: string | undefined;
  clientId: string;
  clientSecret?: string | undefined;
  issuer?: string | undefined;
  /** Defaults to the provider's default scopes. */
  scopes?: string[] | undefined;
  /** Catalog parameters (`tenant`, `subdomain`). */
  parameters?: Record<string, string> | undefined;
  /** `generic` only: every endpoint given by hand. */
  endpoints?: ProviderEndpoints | undefined;
  clientAuth?: ProviderEntry['clientAuth'] | undefined;
  /** RFC 8707 resource to send on every authorization and token request. */
  resource?: string | undefined;
  /** Agents may ask their users to connect through this app (`authorization_required`). */
  agentConnect?: boolean | undefined;
  /** Through which flows (preferred first); giving them implies `agentConnect`. */
  agentConnectFlows?: AgentConnectFlow[] | undefined;
  /** Set by MCP discovery only: how the client was registered. */
  registration?: McpClientRegistration | undefined;
}

export interface DiscoverMcpAppInput {
  mcpUrl: string;
  /** Defaults to the MCP server's host name. */
  name?: string | undefined;
  /** Defaults to the scopes the server's resource metadata advertises. */
  scopes?: string[] | undefined;
  agentConnect?: boolean | undefined;
  /** Default `auto`: the vault's metadata document where the server supports it, else registration. */
  registration?: McpRegistrationChoice | undefined;
}

/** An app name from a host: lowercase, only the characters app names allow. */
const nameFromHost = (mcpUrl: string) => {
  try {
    const host = new URL(mcpUrl).hostname.toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
    return host.replace(/^[^a-z0-9]+/, '').slice(0, 64) || 'mcp';
  } catch {
    return 'mcp';
  }
};

export interface OAuthAppServiceDeps {
  store: Pick<Store, 'db'>;
  dataKeys: Pick<DataKeyService, 'prepare' | 'insert' | 'open' | 'remove'>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
  catalog: Pick<ProviderCatalog, 'get'>;
  /** OIDC discovery of an issuer (through the outbound guard). */
  discover: (issuer: string) => Promise<DiscoveredIssuer>;
  /**
   * MCP authorization discovery and client registration (through the outbound guard); the vault's
   * Client ID Metadata Document URL is undefined when its public URL is not https.
   */
  discoverMcp: (
    mcpUrl: string,
    client: Pick<McpDiscoveryDeps, 'redirectUri' | 'clientIdMetadataUrl' | 'registration'>,
  ) => Promise<DiscoveredMcpServer>;
  /** The vault's public base URL: the redirect URI is built from it. */
  publicUrl: string;
  /** The vault's name as a client (`client_name` of its registrations and metadata document). */
  clientName: string;
  /** Local test providers only: endpoints may be http://. */
  allowHttp: boolean;
}

/** An app with the secret opened, its catalog entry and the client the token calls need. */
export interface OpenedOAuthApp {
  app: OAuthApp;
  provider: ProviderEntry;
  client: OAuthClientApp;
}

/**
 * The flows an operator lets agents start, checked against what the provider can do: the device
 * flow needs a device authorization endpoint, the browser flow an authorization endpoint.
 */
const agentFlows = (flows: readonly string[], endpoints: ProviderEndpoints): AgentConnectFlow[] => {
  const unique = [...new Set(flows)];
  if (unique.length === 0 || unique.some((flow) => flow !== 'browser' && flow !== 'device')) {
    throw new VaultError('invalid_request', 'Agent connect flows are `browser`, `device` or both.');
  }
  if (unique.includes('device') && !endpoints.deviceAuthorization) {
    throw new VaultError('connect_device_unsupported');
  }
  if (unique.includes('browser') && !endpoints.authorization) {
    throw new VaultError(
      'invalid_request',
      'This app has no authorization endpoint: agents can use `device` only.',
    );
  }
  return unique as AgentConnectFlow[];
};

const appNamePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const secretField = 'client_secret';

/** The path every provider redirects back to; the same for every app (register it once per app). */
export const callbackPath = '/v1/oauth/callback';
export const redirectUriFor = (publicUrl: string) => `${publicUrl.replace(/\/+$/, '')}${callbackPath}`;

export const createOAuthAppService = (deps: OAuthAppServiceDeps) => {
  const { db } = deps.store;
  const { audit, clock } = deps;
  const redirectUri = redirectUriFor(deps.publicUrl);
  const clientIdMetadataUrl = clientIdMetadataUrlFor(deps.publicUrl);

  const spec = (ctx: AuditContext, namespace: string, action: AuditAction, name: string): AuditSpec => ({
    ctx,
    namespace,
    action,
    target: { type: 'oauth_app', id: name.slice(0, 200) },
    details: { app_name: name.slice(0, 200) },
  });

  /**
   * The entry as an app of it uses it. An `oidc` entry's one parameter is the issuer to discover; once
   * discovered, the app carries the endpoints and the issuer itself, so the parameter is dropped
   * (it would otherwise be required again by every endpoint resolution).
   */
  const forApp = (entry: ProviderEntry): ProviderEntry => {
    if (entry.kind !== 'oidc') return entry;
    const { parameters: _discoveryOnly, ...rest } = entry;
    return rest;
  };

  const entryOf = (name: string): ProviderEntry => {
    const entry = deps.catalog.get(name);
    if (!entry) {
      throw new VaultError(
        'oauth_provider_unknown',
        `No provider named "${name.slice(0, 64)}" in the catalog; \`tokenvault oauth providers\` lists them (oidc and generic too).`,
      );
    }
    return entry;
  };

  const invalid = (message: string) => new VaultError('invalid_request', message);

  /** Everything checked and discovered before the transaction: the row to insert, secret sealed. */
  const prepare = async (namespace: string, input: AddOAuthAppInput) => {
    assertNamespace(namespace);
    const entry = entryOf(input.provider);
    const name = input.name ?? entry.name;
    if (!appNamePattern.test(name)) {
      throw invalid('An app name is 1 to 64 characters: lowercase letters, digits, ".", "_" and "-".');
    }
    if (typeof input.clientId !== 'string' || input.clientId.length === 0 || input.clientId.length > 512) {
      throw invalid('client_id is required (at most 512 characters).');
    }
    if (
      input.clientSecret !== undefined &&
      (input.clientSecret.length === 0 || input.clientSecret.length > 4096)
    ) {
      throw invalid('client_secret must be 1 to 4096 characters.');
    }
    const scopes = validateScopes(input.scopes ?? entry.scopes.default);
    const settings: StoredAppSettings = {};
    let issuer: string | null = null;
    try {
      if (entry.kind === 'oidc') {
        if (!input.issuer) throw invalid('An oidc app needs the issuer URL (`--issuer`).');
        const discovered = await deps.discover(input.issuer);
        issuer = discovered.issuer;
        settings.endpoints = discovered.endpoints;
        settings.clientAuth = input.clientAuth ?? discovered.clientAuth;
        settings.pkce = discovered.pkce;
      } else if (entry.kind === 'generic') {
        if (!input.endpoints?.token) throw invalid('A generic app needs at least its token endpoint.');
        settings.endpoints = input.endpoints;
        if (input.clientAuth) settings.clientAuth = input.clientAuth;
        issuer = input.issuer ?? null;
      } else {
        if (input.parameters) settings.parameters = resolveParameters(entry, input.parameters);
        if (input.issuer)
          throw invalid(`The ${entry.name} app takes no issuer; its endpoints are in the catalog.`);
      }
      if (input.resource !== undefined) settings.resource = input.resource;
      if (input.registration !== undefined) settings.registration = input.registration;
      // Fails now, with every problem named, rather than at the first connect.
      const resolved = resolveEndpoints(forApp(entry), settings, { allowHttp: deps.allowHttp });
      if (input.agentConnectFlows !== undefined) {
        settings.agentConnectFlows = agentFlows(input.agentConnectFlows, resolved);
      }
    } catch (error) {
      if (error instanceof ProviderSettingsError) throw invalid(error.message);
      throw error;
    }
    if (await oauthAppRepo.findByName(db, namespace, name)) throw appExists(namespace, name);

    const id = newId();
    const { dek, row: dataKeyRow } = await deps.dataKeys.prepare(namespace, id);
    const clientSecret =
      input.clientSecret === undefined
        ? null
        : encryptField(dek, dataKeyRow.id, sealedAt(namespace, id), input.clientSecret);
    const now = clock.now().toISOString();
    const row: OAuthAppRow = {
      id,
      namespace,
      name,
      provider: entry.name,
      client_id: input.clientId,
      client_secret: clientSecret,
      data_key_id: dataKeyRow.id,
      issuer,
      scopes: JSON.stringify(scopes),
      settings: JSON.stringify(settings),
      agent_connect: input.agentConnect || input.agentConnectFlows !== undefined ? 1 : 0,
      created_at: now,
      updated_at: now,
    };
    return { row, dataKeyRow };
  };

  const appExists = (namespace: string, name: string) =>
    new VaultError(
      'oauth_app_exists',
      `An OAuth app named "${name}" already exists in namespace "${namespace}".`,
    );

  const notFound = (name: string) =>
    new VaultError('oauth_app_not_found', `No OAuth app named "${name.slice(0, 64)}" in this namespace.`);

  const open = async (row: OAuthAppRow): Promise<OpenedOAuthApp> => {
    const app = toOAuthApp(row);
    const provider = forApp(entryOf(app.provider));
    const settings = app.settings;
    const client: OAuthClientApp = {
      clientId: app.clientId,
      settings: {
        ...(settings.parameters ? { parameters: settings.parameters } : {}),
        ...(settings.endpoints ? { endpoints: settings.endpoints } : {}),
      },
      ...(settings.clientAuth ? { clientAuth: settings.clientAuth } : {}),
      ...(app.issuer ? { issuer: app.issuer } : {}),
      ...(settings.resource ? { resource: settings.resource } : {}),
    };
    if (row.client_secret !== null) {
      const dek = await deps.dataKeys.open(app.dataKeyId);
      client.clientSecret = decryptField(
        dek,
        app.dataKeyId,
        sealedAt(app.namespace, app.id),
        row.client_secret,
      ).toString('utf8');
    }
    return { app, provider, client };
  };

  return {
    redirectUri,
    clientIdMetadataUrl,

    /** The vault's Client ID Metadata Document, or undefined without an https public URL to serve it at. */
    clientMetadataDocument: (): ClientMetadataDocument | undefined =>
      clientIdMetadataUrl === undefined
        ? undefined
        : clientMetadataDocument({
            clientId: clientIdMetadataUrl,
            publicUrl: deps.publicUrl,
            redirectUri,
            clientName: deps.clientName,
          }),

    add: (namespace: string, input: AddOAuthAppInput, ctx: AuditContext = systemContext) =>
      auditedChange(
        { db, audit },
        {
          ...spec(ctx, namespace, 'oauth_app.create', String(input.name ?? input.provider)),
          prepare: () => prepare(namespace, input),
        },
        async (trx, record, { row, dataKeyRow }): Promise<OAuthApp> => {
          try {
            await deps.dataKeys.insert(trx, dataKeyRow);
            await oauthAppRepo.insert(trx, row);
          } catch (error) {
            if (isUniqueViolation(error)) throw appExists(namespace, row.name);
            throw error;
          }
          await record({
            details: {
              app_id: row.id,
              provider: row.provider,
              client_secret: row.client_secret !== null,
              ...(input.registration ? { registration: input.registration } : {}),
            },
          });
          return toOAuthApp(row);
        },
      ),

    /**
     * `oauth app discover`: the MCP server's authorization server found and the vault registered with
     * it (see mcp-discovery.ts: by its metadata document URL, else by dynamic registration), then stored
     * like a `generic` app whose every authorization and token request carries the server's resource
     * (RFC 8707). The name is checked first, so a taken name registers no client at the server.
     */
    async discoverMcp(
      namespace: string,
      input: DiscoverMcpAppInput,
      ctx: AuditContext = systemContext,
    ): Promise<OAuthApp> {
      assertNamespace(namespace);
      const name = input.name ?? nameFromHost(input.mcpUrl);
      if (appNamePattern.test(name) && (await oauthAppRepo.findByName(db, namespace, name))) {
        throw appExists(namespace, name);
      }
      const found = await deps.discoverMcp(input.mcpUrl, {
        redirectUri,
        clientIdMetadataUrl,
        registration: input.registration,
      });
      return this.add(
        namespace,
        {
          provider: 'generic',
          name,
          clientId: found.clientId,
          clientSecret: found.clientSecret,
          issuer: found.issuer,
          scopes: input.scopes ?? found.scopes,
          endpoints: found.endpoints,
          clientAuth: found.clientAuth,
          resource: found.resource,
          agentConnect: input.agentConnect,
          registration: found.registration,
        },
        ctx,
      );
    },

    async list(namespace: string): Promise<OAuthApp[]> {
      assertNamespace(namespace);
      return (await oauthAppRepo.list(db, namespace)).map(toOAuthApp);
    },

    async get(namespace: string, name: string): Promise<OAuthApp> {
      assertNamespace(namespace);
      const row = await oauthAppRepo.findByName(db, namespace, name);
      if (!row) throw notFound(name);
      return toOAuthApp(row);
    },

    remove: (namespace: string, name: string, ctx: AuditContext = systemContext) =>
      auditedChange({ db, audit }, spec(ctx, namespace, 'oauth_app.delete', name), async (trx, record) => {
        assertNamespace(namespace);
        const row = await oauthAppRepo.findByName(trx, namespace, name);
        if (!row) throw notFound(name);
        const using = await oauthAppRepo.credentialsUsing(trx, row.id);
        if (using > 0) {
          throw new VaultError(
            'oauth_app_in_use',
            `${using} credential(s) hold tokens of the app "${name}"; remove them first (their refresh needs the app).`,
          );
        }
        await oauthAppRepo.remove(trx, row.id);
        await deps.dataKeys.remove(trx, row.data_key_id);
        await record({ details: { app_id: row.id } });
      }),

    /** The app by name with its secret opened, for connect. */
    async open(namespace: string, name: string): Promise<OpenedOAuthApp> {
      const row = await oauthAppRepo.findByName(db, namespace, name);
      if (!row) throw notFound(name);
      return open(row);
    },

    async openById(namespace: string, id: string): Promise<OpenedOAuthApp | undefined> {
      const row = await oauthAppRepo.findById(db, namespace, id);
      return row ? open(row) : undefined;
    },

    /** The app a credential's tokens come from, secret opened; undefined when it has none. */
    async openForCredential(namespace: string, credentialId: string): Promise<OpenedOAuthApp | undefined> {
      const row = await oauthAppRepo.findForCredential(db, namespace, credentialId);
      return row ? open(row) : undefined;
    },
  };
};

/** Where the client secret lives, bound into its ciphertext (AAD): the app's id, field `client_secret`. */
const sealedAt = (namespace: string, appId: string) => ({
  namespace,
  credentialId: appId,
  version: 1,
  field: secretField,
});

export type OAuthAppService = ReturnType<typeof createOAuthAppService>;
