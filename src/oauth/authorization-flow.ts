import * as oauth from 'oauth4webapi';
import type { OpenedOAuthApp } from './oauth-app-service.js';
import type { ProviderEndpoints, ProviderEntry } from './provider-schema.js';
import { resolveEndpoints } from './provider-template.js';
import type { OAuthClientApp } from './token-client.js';

/**
 * The client side of an authorization (code + PKCE, device) against one app, with oauth4webapi
 * building and checking every message. Nothing here stores anything: the connect service keeps the
 * state, verifier and nonce (encrypted) between the two halves.
 */

export interface FlowDeps {
  /** The outbound guard's fetch: the endpoints are URLs an admin chose. */
  fetch: typeof fetch;
  allowHttp: boolean;
  timeoutMs?: number;
}

export interface AuthorizationSecrets {
  state: string;
  verifier: string;
  nonce?: string;
}

export const endpointsOf = (opened: OpenedOAuthApp, allowHttp: boolean): ProviderEndpoints =>
  resolveEndpoints(opened.provider, opened.client.settings ?? {}, { allowHttp });

/** oauth4webapi's view of the provider. `issuer` is the app's own when known (oidc, discovery). */
export const authorizationServerOf = (
  opened: OpenedOAuthApp,
  allowHttp: boolean,
): oauth.AuthorizationServer => {
  const endpoints = endpointsOf(opened, allowHttp);
  return {
    issuer: opened.client.issuer ?? new URL(endpoints.authorization ?? endpoints.token).origin,
    token_endpoint: endpoints.token,
    ...(endpoints.authorization ? { authorization_endpoint: endpoints.authorization } : {}),
    ...(endpoints.deviceAuthorization
      ? { device_authorization_endpoint: endpoints.deviceAuthorization }
      : {}),
    ...(endpoints.revocation ? { revocation_endpoint: endpoints.revocation } : {}),
  };
};

export const clientAuthOf = (provider: ProviderEntry, app: OAuthClientApp): oauth.ClientAuth => {
  const method = app.clientAuth ?? provider.clientAuth;
  if (app.clientSecret === undefined) return oauth.None();
  return method === 'client_secret_post'
    ? oauth.ClientSecretPost(app.clientSecret)
    : oauth.ClientSecretBasic(app.clientSecret);
};

const usesOidc = (opened: OpenedOAuthApp, scopes: readonly string[]) =>
  opened.provider.kind === 'oidc' && scopes.includes('openid');

const pkceOf = (opened: OpenedOAuthApp) => opened.app.settings.pkce ?? opened.provider.pkce;

/** Fresh secrets for one authorization: state always, PKCE S256 unless the provider has none, nonce for OIDC. */
export const newAuthorizationSecrets = (
  opened: OpenedOAuthApp,
  scopes: readonly string[],
): AuthorizationSecrets => ({
  state: oauth.generateRandomState(),
  verifier: oauth.generateRandomCodeVerifier(),
  ...(usesOidc(opened, scopes) ? { nonce: oauth.generateRandomNonce() } : {}),
});

/** The URL the person's browser is sent to. */
export const authorizationUrl = async (
  opened: OpenedOAuthApp,
  input: {
    redirectUri: string;
    scopes: readonly string[];
    secrets: AuthorizationSecrets;
    allowHttp: boolean;
  },
): Promise<string> => {
  const { authorization } = endpointsOf(opened, input.allowHttp);
  if (!authorization) throw new Error('the provider has no authorization endpoint');
  const url = new URL(authorization);
  const params = url.searchParams;
  for (const [key, value] of Object.entries(opened.provider.extraParams?.authorize ?? {}))
    params.set(key, value);
  params.set('response_type', 'code');
  params.set('client_id', opened.client.clientId);
  params.set('redirect_uri', input.redirectUri);
  if (input.scopes.length > 0) params.set('scope', input.scopes.join(opened.provider.scopes.separator));
  params.set('state', input.secrets.state);
  if (pkceOf(opened) !== 'none') {
    params.set('code_challenge', await oauth.calculatePKCECodeChallenge(input.secrets.verifier));
    params.set('code_challenge_method', 'S256');
  }
  if (input.secrets.nonce) params.set('nonce', input.secrets.nonce);
  if (opened.app.settings.resource) params.set('resource', opened.app.settings.resource);
  return url.href;
};

/** The extra parameters of every token request of this app (the catalog's, and RFC 8707 `resource`). */
export const tokenParameters = (opened: OpenedOAuthApp): Record<string, string> => ({
  ...opened.provider.extraParams?.token,
  ...(opened.app.settings.resource ? { resource: opened.app.settings.resource } : {}),
});

export const requestOptions = (deps: FlowDeps, opened: OpenedOAuthApp) => ({
  [oauth.customFetch]: deps.fetch,
  signal: AbortSignal.timeout(deps.timeoutMs ?? 15_000),
  additionalParameters: tokenParameters(opened),
  ...(deps.allowHttp ? { [oauth.allowInsecureRequests]: true } : {}),
});

/** Whether the app's scopes make this an OpenID Connect authorization (an ID token and its nonce). */
export { usesOidc, pkceOf };
