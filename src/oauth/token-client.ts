import * as oauth from 'oauth4webapi';
import type { Clock } from '../lib/clock.js';
import { normalizeTokenResponse, type RawTokenResponse } from './normalize-token-response.js';
import type { ProviderEntry } from './provider-schema.js';
import { type ProviderAppSettings, resolveEndpoints } from './provider-template.js';
import type { TokenOutcome } from './token-set.js';

/**
 * The token endpoint call. oauth4webapi builds and sends the request (client authentication as the
 * provider wants it, form encoding, `Accept: application/json`, https only, redirects not followed);
 * the raw answer is then read here and normalised by the catalog entry, not by
 * `processRefreshTokenResponse`, because that function is written for conforming servers: it rejects
 * Slack's `token_type: "bot"` and its HTTP 200 `{ok:false}` errors, has no notion of nested tokens or
 * of error codes outside `error`, and reports refusals as exceptions of several classes, whereas the
 * refresher needs one classified outcome (reauth_required / retryable / fatal) for every provider.
 */

export interface OAuthClientApp {
  clientId: string;
  /** For client_secret_basic and client_secret_post. */
  clientSecret?: string;
  /** For private_key_jwt. */
  privateKey?: Parameters<typeof oauth.PrivateKeyJwt>[0];
  /** The method chosen when the app was added (oidc/generic apps); the entry's otherwise. */
  clientAuth?: ProviderEntry['clientAuth'];
  /**
   * The authorization server's issuer identifier (oidc apps, from discovery). Absent, the token
   * endpoint stands in; private_key_jwt uses it as the assertion's audience.
   */
  issuer?: string;
  /** RFC 8707 resource the app's tokens are for: sent on refresh requests too. */
  resource?: string;
  settings?: ProviderAppSettings;
}

export interface RefreshRequest {
  provider: ProviderEntry;
  app: OAuthClientApp;
  refreshToken: string;
  /** A narrower scope set to ask for (where the provider allows it). */
  scopes?: string[];
}

export interface TokenClientDeps {
  clock: Pick<Clock, 'now'>;
  /** The fetch used for token requests (tests route it to local servers). */
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** Local test servers only: lets requests go to http:// endpoints. */
  allowHttp?: boolean;
}

export const clientAuthFor = (method: ProviderEntry['clientAuth'], app: OAuthClientApp): oauth.ClientAuth => {
  if (method === 'private_key_jwt') {
    if (!app.privateKey) throw new Error('private_key_jwt needs the app’s private key');
    return oauth.PrivateKeyJwt(app.privateKey);
  }
  // A public client (a Client ID Metadata Document app) has no secret to present: as at the code exchange.
  if (app.clientSecret === undefined) return oauth.None();
  return method === 'client_secret_basic'
    ? oauth.ClientSecretBasic(app.clientSecret)
    : oauth.ClientSecretPost(app.clientSecret);
};

/**
 * The answer as the normaliser takes it: JSON, or a form-encoded body (GitHub's default when a
 * request does not ask for JSON), else the text itself.
 */
export const readTokenResponse = async (response: Response): Promise<RawTokenResponse> => {
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  let body: unknown = text;
  if (type.includes('application/x-www-form-urlencoded')) {
    body = Object.fromEntries(new URLSearchParams(text));
  } else if (text.trimStart().startsWith('{')) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: response.status, body, retryAfter: response.headers.get('retry-after') };
};

const isTimeout = (error: unknown): boolean =>
  error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');

export interface ClientCredentialsRequest {
  provider: ProviderEntry;
  app: OAuthClientApp;
  /** The scopes to ask for; none: the provider's default for the client. */
  scopes: readonly string[];
}

export const createTokenClient = (deps: TokenClientDeps) => {
  const timeoutMs = deps.timeoutMs ?? 15_000;

  /**
   * One grant at the app's token endpoint (`refresh` when the entry has its own refresh endpoint),
   * normalised by the catalog. Never throws for what the provider or the network did: see TokenOutcome.
   */
  const grant = async (
    provider: ProviderEntry,
    app: OAuthClientApp,
    parameters: Record<string, string>,
    send: (
      as: oauth.AuthorizationServer,
      clientAuth: oauth.ClientAuth,
      options: oauth.ClientCredentialsGrantRequestOptions,
    ) => Promise<Response>,
  ): Promise<TokenOutcome> => {
    const endpoints = resolveEndpoints(provider, app.settings ?? {}, { allowHttp: deps.allowHttp ?? false });
    const tokenEndpoint = endpoints.refresh ?? endpoints.token;
    const as: oauth.AuthorizationServer = {
      issuer: app.issuer ?? tokenEndpoint,
      token_endpoint: tokenEndpoint,
    };
    if (app.resource) parameters.resource = app.resource;

    let response: Response;
    try {
      response = await send(as, clientAuthFor(app.clientAuth ?? provider.clientAuth, app), {
        signal: AbortSignal.timeout(timeoutMs),
        ...(deps.fetch ? { [oauth.customFetch]: deps.fetch } : {}),
        ...(deps.allowHttp ? { [oauth.allowInsecureRequests]: true } : {}),
      });
    } catch (error) {
      // No answer at all: the current token stays in use and the request is tried again later.
      return {
        ok: false,
        failure: {
          kind: 'retryable',
          code: isTimeout(error) ? 'timeout' : 'network_error',
          status: 0,
          description: (error as Error).message,
        },
      };
    }
    return normalizeTokenResponse(provider, await readTokenResponse(response), deps.clock.now());
  };

  /** One refresh-token grant (RFC 6749 §6). */
  const refresh = ({ provider, app, refreshToken, scopes }: RefreshRequest): Promise<TokenOutcome> => {
    const parameters: Record<string, string> = {
      ...provider.extraParams?.token,
      ...provider.extraParams?.refresh,
    };
    if (scopes) parameters.scope = scopes.join(provider.scopes.separator);
    return grant(provider, app, parameters, (as, clientAuth, options) =>
      oauth.refreshTokenGrantRequest(as, { client_id: app.clientId }, clientAuth, refreshToken, {
        ...options,
        additionalParameters: parameters,
      }),
    );
  };

  /** One client-credentials grant (RFC 6749 §4.4): the app's own token, renewed by asking again. */
  const clientCredentials = ({ provider, app, scopes }: ClientCredentialsRequest): Promise<TokenOutcome> => {
    const parameters: Record<string, string> = { ...provider.extraParams?.token };
    if (scopes.length > 0) parameters.scope = scopes.join(provider.scopes.separator);
    return grant(provider, app, parameters, (as, clientAuth, options) =>
      oauth.clientCredentialsGrantRequest(as, { client_id: app.clientId }, clientAuth, parameters, options),
    );
  };

  return { refresh, clientCredentials };
};

export type TokenClient = ReturnType<typeof createTokenClient>;
