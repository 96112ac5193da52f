import * as oauth from 'oauth4webapi';
import { VaultError } from '../errors/vault-error.js';
import type { ProviderEndpoints, ProviderEntry } from './provider-schema.js';

/** What an `oidc` app keeps of its issuer's discovery document. */
export interface DiscoveredIssuer {
  issuer: string;
  endpoints: ProviderEndpoints;
  clientAuth: ProviderEntry['clientAuth'];
  pkce: ProviderEntry['pkce'];
}

export interface DiscoveryDeps {
  /** The outbound guard's fetch: the issuer is a URL an admin chose. */
  fetch: typeof fetch;
  /** Local test issuers only: lets discovery and endpoints use http://. */
  allowHttp: boolean;
  timeoutMs?: number;
}

/**
 * OpenID Connect discovery of an issuer (oauth4webapi checks that the document's `issuer` is exactly
 * the one asked for). The vault keeps the endpoints it will call and the client authentication it will
 * use: `client_secret_basic` unless the issuer only lists `client_secret_post`.
 */
export const discoverIssuer = async (issuerUrl: string, deps: DiscoveryDeps): Promise<DiscoveredIssuer> => {
  const fail = (why: string, cause?: unknown) =>
    new VaultError('oauth_discovery_failed', `Discovery of ${issuerUrl.slice(0, 200)} failed: ${why}.`, {
      cause,
    });
  let issuer: URL;
  try {
    issuer = new URL(issuerUrl);
  } catch (error) {
    throw fail('not a URL', error);
  }
  if (issuer.protocol !== 'https:' && !(deps.allowHttp && issuer.protocol === 'http:')) {
    throw fail('the issuer must be an https URL');
  }
  const options = {
    [oauth.customFetch]: deps.fetch,
    signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000),
    ...(deps.allowHttp ? { [oauth.allowInsecureRequests]: true } : {}),
  };
  let as: oauth.AuthorizationServer;
  try {
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, options));
  } catch (error) {
    throw fail(error instanceof Error ? error.message.slice(0, 200) : 'no valid answer', error);
  }
  if (!as.token_endpoint) throw fail('the document names no token endpoint');
  const endpoints: ProviderEndpoints = { token: as.token_endpoint };
  if (as.authorization_endpoint) endpoints.authorization = as.authorization_endpoint;
  if (as.revocation_endpoint) endpoints.revocation = as.revocation_endpoint;
  if (as.device_authorization_endpoint) endpoints.deviceAuthorization = as.device_authorization_endpoint;
  if (as.introspection_endpoint) endpoints.introspection = as.introspection_endpoint;
  if (as.userinfo_endpoint) endpoints.userinfo = as.userinfo_endpoint;
  const methods = as.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  const clientAuth =
    !methods.includes('client_secret_basic') && methods.includes('client_secret_post')
      ? 'client_secret_post'
      : 'client_secret_basic';
  const pkce = as.code_challenge_methods_supported?.includes('S256') ? 'supported' : 'none';
  return { issuer: as.issuer, endpoints, clientAuth, pkce };
};
