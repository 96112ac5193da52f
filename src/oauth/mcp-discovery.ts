import * as oauth from 'oauth4webapi';
import { VaultError } from '../errors/vault-error.js';
import type { ProviderEndpoints, ProviderEntry } from './provider-schema.js';

/**
 * MCP authorization discovery (MCP specification, authorization): from the URL of a remote MCP server
 * to an OAuth client registered with the server's authorization server.
 *
 *   1. an unauthenticated MCP request must be answered 401; its `WWW-Authenticate` names the protected
 *      resource metadata (RFC 9728 `resource_metadata=`), else the well-known URL is tried;
 *   2. that document names the resource (sent as RFC 8707 `resource` on every request) and its
 *      authorization server;
 *   3. the authorization server's metadata (RFC 8414, else OpenID Connect discovery);
 *   4. the client: where the server advertises `client_id_metadata_document_supported` and the vault is
 *      reachable over https, the vault's own Client ID Metadata Document URL is its client_id (nothing
 *      is sent to the server now; it fetches the document at the first authorization request, see
 *      client-metadata-document.ts); else dynamic client registration (RFC 7591) with the vault's
 *      redirect URI.
 *
 * Every fetch goes through the caller's (outbound-guarded) fetch: each URL here is one a remote server
 * chose, not the operator.
 */
export interface McpDiscoveryDeps {
  fetch: typeof fetch;
  /** Local test servers only: lets the MCP server, its metadata and its issuer use http://. */
  allowHttp: boolean;
  /** The redirect URI registered for the client (the vault's callback). */
  redirectUri: string;
  /** `client_name` in the registration. */
  clientName: string;
  /** The vault's Client ID Metadata Document URL; undefined when the vault has no https public URL. */
  clientIdMetadataUrl?: string | undefined;
  /**
   * `auto` (default): the metadata document where the server supports it, else dynamic registration.
   * Either way by name forces it: `dynamic_client_registration` for a vault the server cannot reach
   * (an internal vault and a SaaS server), `client_id_metadata_document` to refuse a registration.
   */
  registration?: McpRegistrationChoice | undefined;
  timeoutMs?: number;
}

export interface DiscoveredMcpServer {
  /** The protected resource's identifier (RFC 9728 `resource`), sent as RFC 8707 `resource`. */
  resource: string;
  issuer: string;
  endpoints: ProviderEndpoints;
  clientAuth: ProviderEntry['clientAuth'];
  pkce: ProviderEntry['pkce'];
  /** The scopes the resource advertises (`scopes_supported`), empty when it names none. */
  scopes: string[];
  clientId: string;
  clientSecret?: string;
  /** How the vault became a client of the authorization server. */
  registration: McpClientRegistration;
}

export type McpClientRegistration = 'client_id_metadata_document' | 'dynamic_client_registration';
export type McpRegistrationChoice = 'auto' | McpClientRegistration;

/**
 * Step 4's choice, pure. A metadata document client is public (no secret can be in a public document),
 * so it is chosen only where the server takes PKCE S256 and public clients (`none`, when it lists its
 * methods); otherwise dynamic registration gives a confidential client as before.
 */
export const chooseRegistration = (
  as: Pick<
    oauth.AuthorizationServer,
    'code_challenge_methods_supported' | 'token_endpoint_auth_methods_supported'
  > & { client_id_metadata_document_supported?: unknown },
  clientIdMetadataUrl: string | undefined,
): McpClientRegistration => {
  const methods = as.token_endpoint_auth_methods_supported;
  return as.client_id_metadata_document_supported === true &&
    clientIdMetadataUrl !== undefined &&
    as.code_challenge_methods_supported?.includes('S256') === true &&
    (methods === undefined || methods.includes('none'))
    ? 'client_id_metadata_document'
    : 'dynamic_client_registration';
};

const clip = (text: string) => text.slice(0, 200);

/** The `resource_metadata` parameter of a Bearer challenge (RFC 9728 §5.1), quoted or not. */
export const resourceMetadataOf = (wwwAuthenticate: string | null): string | undefined => {
  if (!wwwAuthenticate || !/^\s*bearer\b/i.test(wwwAuthenticate)) return undefined;
  const match = /(?:^|[\s,])resource_metadata\s*=\s*(?:"([^"]*)"|([^\s,]+))/i.exec(wwwAuthenticate);
  return match?.[1] ?? match?.[2];
};

/** RFC 9728 §3.1: the well-known URL inserted before the resource's path, then at the origin. */
export const wellKnownMetadataUrls = (mcpUrl: URL): string[] => {
  const path = mcpUrl.pathname.replace(/\/+$/, '');
  const root = `${mcpUrl.origin}/.well-known/oauth-protected-resource`;
  return path ? [`${root}${path}`, root] : [root];
};

export const discoverMcpServer = async (
  mcpUrl: string,
  deps: McpDiscoveryDeps,
): Promise<DiscoveredMcpServer> => {
  const timeout = () => AbortSignal.timeout(deps.timeoutMs ?? 10_000);
  const secure = (url: URL) => url.protocol === 'https:' || (deps.allowHttp && url.protocol === 'http:');
  const missing = (why: string, cause?: unknown) =>
    new VaultError('mcp_auth_metadata_missing', `${clip(mcpUrl)}: ${why}.`, { cause });

  let server: URL;
  try {
    server = new URL(mcpUrl);
  } catch (error) {
    throw new VaultError('invalid_request', 'mcp_url is not a URL.', { cause: error });
  }
  if (!secure(server)) throw new VaultError('invalid_request', 'The MCP server URL must be an https URL.');

  // 1. An MCP request without a token, as any client's first one (a protocol-level initialize).
  let challenge: Response;
  try {
    challenge = await deps.fetch(server, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'tokenvault', version: '1' },
        },
      }),
      redirect: 'manual',
      signal: timeout(),
    });
    await challenge.body?.cancel();
  } catch (error) {
    throw missing(
      `the server could not be reached (${error instanceof Error ? clip(error.message) : 'error'})`,
      error,
    );
  }
  if (challenge.status !== 401) {
    throw missing(
      `an unauthenticated request was answered ${challenge.status}, not 401: the server asks for no OAuth`,
    );
  }

  // 2. Protected resource metadata: the challenge's, else the well-known URLs.
  const named = resourceMetadataOf(challenge.headers.get('www-authenticate'));
  const candidates = named ? [named] : wellKnownMetadataUrls(server);
  let metadata: Record<string, unknown> | undefined;
  let lastWhy = 'no protected resource metadata';
  for (const candidate of candidates) {
    try {
      const url = new URL(candidate, server);
      if (!secure(url)) {
        lastWhy = 'its resource metadata URL is not https';
        continue;
      }
      const answer = await deps.fetch(url, {
        headers: { accept: 'application/json' },
        redirect: 'manual',
        signal: timeout(),
      });
      if (!answer.ok) {
        await answer.body?.cancel();
        lastWhy = `its resource metadata ${clip(url.href)} answered ${answer.status}`;
        continue;
      }
      const body = (await answer.json()) as unknown;
      if (body && typeof body === 'object' && !Array.isArray(body)) {
        metadata = body as Record<string, unknown>;
        break;
      }
      lastWhy = 'its resource metadata is not a JSON object';
    } catch (error) {
      lastWhy = `its resource metadata could not be read (${error instanceof Error ? clip(error.message) : 'error'})`;
    }
  }
  if (!metadata) throw missing(`401 without usable protected resource metadata: ${lastWhy}`);
  const resource = metadata.resource;
  if (typeof resource !== 'string' || !URL.canParse(resource)) {
    throw missing('its protected resource metadata names no resource');
  }
  // The resource must be this server (same origin; the MCP URL at or under its path), not a third party.
  const resourceUrl = new URL(resource);
  const resourcePath = resourceUrl.pathname.replace(/\/$/, '');
  if (resourceUrl.origin !== server.origin || !server.pathname.startsWith(resourcePath)) {
    throw missing(`its metadata describes ${clip(resource)}, not this server`);
  }
  const servers = metadata.authorization_servers;
  if (!Array.isArray(servers) || typeof servers[0] !== 'string') {
    throw missing('its protected resource metadata names no authorization server');
  }
  const scopes = Array.isArray(metadata.scopes_supported)
    ? metadata.scopes_supported.filter((s): s is string => typeof s === 'string')
    : [];

  // 3. The authorization server's metadata: RFC 8414 first, then OpenID Connect discovery.
  let issuer: URL;
  try {
    issuer = new URL(servers[0]);
  } catch (error) {
    throw missing('its authorization server is not a URL', error);
  }
  if (!secure(issuer)) {
    throw new VaultError(
      'mcp_auth_insecure_issuer',
      `The authorization server ${clip(issuer.href)} of ${clip(mcpUrl)} is not https.`,
    );
  }
  const as = await authorizationServer(issuer, deps, timeout);
  if (!as.token_endpoint || !as.authorization_endpoint) {
    throw new VaultError(
      'oauth_discovery_failed',
      `${clip(issuer.href)} names no authorization or token endpoint.`,
    );
  }
  const endpoints: ProviderEndpoints = { authorization: as.authorization_endpoint, token: as.token_endpoint };
  if (as.revocation_endpoint) endpoints.revocation = as.revocation_endpoint;
  if (as.device_authorization_endpoint) endpoints.deviceAuthorization = as.device_authorization_endpoint;
  if (as.introspection_endpoint) endpoints.introspection = as.introspection_endpoint;
  const methods = as.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  const clientAuth =
    !methods.includes('client_secret_basic') && methods.includes('client_secret_post')
      ? 'client_secret_post'
      : 'client_secret_basic';
  const pkce: ProviderEntry['pkce'] = as.code_challenge_methods_supported?.includes('S256')
    ? 'supported'
    : 'none';

  const found = { resource, issuer: as.issuer, endpoints, pkce, scopes };

  const refused = (why: string, cause?: unknown) =>
    new VaultError('mcp_client_registration_failed', `${clip(issuer.href)}: ${why}.`, { cause });
  const choice = deps.registration ?? 'auto';
  const documentUsable = chooseRegistration(as, deps.clientIdMetadataUrl) === 'client_id_metadata_document';
  const noHttpsUrl =
    'client ID metadata documents need the vault reachable over https (an https TOKENVAULT_PUBLIC_URL)';

  // 4a. A Client ID Metadata Document: the client_id is the vault's document URL, a public client.
  if (documentUsable && choice !== 'dynamic_client_registration') {
    return {
      ...found,
      clientAuth,
      clientId: deps.clientIdMetadataUrl!,
      registration: 'client_id_metadata_document',
    };
  }
  if (choice === 'client_id_metadata_document') {
    throw refused(
      as.client_id_metadata_document_supported !== true
        ? 'it does not advertise client_id_metadata_document_supported'
        : !deps.clientIdMetadataUrl
          ? noHttpsUrl
          : 'it does not take the public client a metadata document describes (PKCE S256 and token_endpoint_auth_method none)',
    );
  }

  // 4b. Dynamic client registration (RFC 7591): a confidential client with the vault's callback.
  if (!as.registration_endpoint) {
    const cimdOnly = as.client_id_metadata_document_supported === true && !deps.clientIdMetadataUrl;
    throw refused(
      cimdOnly
        ? `it offers no dynamic client registration, and ${noHttpsUrl}`
        : 'it offers no dynamic client registration',
    );
  }
  let client: oauth.OmitSymbolProperties<oauth.Client>;
  try {
    const response = await oauth.dynamicClientRegistrationRequest(
      as,
      {
        client_name: deps.clientName,
        redirect_uris: [deps.redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: clientAuth,
      },
      {
        [oauth.customFetch]: deps.fetch,
        signal: timeout(),
        ...(deps.allowHttp ? { [oauth.allowInsecureRequests]: true } : {}),
      },
    );
    client = await oauth.processDynamicClientRegistrationResponse(response);
  } catch (error) {
    throw refused(`registration refused (${error instanceof Error ? clip(error.message) : 'error'})`, error);
  }
  return {
    ...found,
    clientAuth,
    clientId: client.client_id,
    ...(typeof client.client_secret === 'string' ? { clientSecret: client.client_secret } : {}),
    registration: 'dynamic_client_registration',
  };
};

const authorizationServer = async (
  issuer: URL,
  deps: McpDiscoveryDeps,
  timeout: () => AbortSignal,
): Promise<oauth.AuthorizationServer> => {
  let last: unknown;
  for (const algorithm of ['oauth2', 'oidc'] as const) {
    try {
      const options = {
        algorithm,
        [oauth.customFetch]: deps.fetch,
        signal: timeout(),
        ...(deps.allowHttp ? { [oauth.allowInsecureRequests]: true } : {}),
      };
      return await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, options));
    } catch (error) {
      last = error;
    }
  }
  throw new VaultError(
    'oauth_discovery_failed',
    `Discovery of ${clip(issuer.href)} failed: ${last instanceof Error ? clip(last.message) : 'no valid answer'}.`,
    { cause: last },
  );
};
