import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import type { VaultEvent } from '../../src/events/event-types.js';
import { loadProviderCatalog } from '../../src/oauth/provider-catalog.js';
import type { ResolveOAuthApp, ResolvedOAuthApp } from '../../src/oauth/refresh/refresh-types.js';
import type { TestOAuthServer } from '../helpers/oauth-server.js';
import type { TestVault } from '../helpers/vault.js';

/**
 * What the refresh tests share: tokens obtained from the local oidc-provider the way a person's
 * consent gets them (authorization code + PKCE, the test driving the login and consent pages), the
 * OAuth app resolver the connect flow will provide (here: every credential belongs to the local
 * server's default client), and an agent with a reveal grant.
 */

const http = { [oauth.allowInsecureRequests]: true };

export interface ConnectedTokens {
  access_token: string;
  refresh_token: string;
}

export const startCallbackServer = async () => {
  const server = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end(request.url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

/** One consent: a code flow through the provider's pages, exchanged for tokens. */
export const connect = async (
  op: TestOAuthServer,
  redirectUri: string,
  account = 'alice',
  scope = 'openid offline_access api:read api:write',
): Promise<ConnectedTokens> => {
  const issuer = new URL(op.issuer);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, http));
  const client = { client_id: op.client.client_id };
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope,
    resource: op.resource,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  }).toString();
  const page = await op.browser({ account }).get(url.href);
  const params = oauth.validateAuthResponse(as, client, new URL(page.url), state);
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.ClientSecretBasic(op.client.client_secret),
      params,
      redirectUri,
      verifier,
      { ...http, additionalParameters: { resource: op.resource } },
    ),
  );
  if (!tokens.refresh_token) throw new Error('the provider issued no refresh token');
  return { access_token: tokens.access_token, refresh_token: tokens.refresh_token };
};

/** The connect flow's resolver, for tests: every credential was connected through the local server's client. */
export const localApp = (op: TestOAuthServer): ResolvedOAuthApp => ({
  appId: 'local-app',
  provider: loadProviderCatalog().get('generic')!,
  app: {
    clientId: op.client.client_id,
    clientSecret: op.client.client_secret,
    issuer: op.issuer,
    settings: {
      endpoints: {
        token: `${op.issuer}/token`,
        revocation: `${op.issuer}/token/revocation`,
        introspection: `${op.issuer}/token/introspection`,
      },
    },
  },
});

export const resolverFor =
  (op: TestOAuthServer): ResolveOAuthApp =>
  async () =>
    localApp(op);

/** An events publisher that keeps what it is given (the outbox is another engineer's). */
export const recordingEvents = () => {
  const published: VaultEvent[] = [];
  return { published, publish: async (event: VaultEvent) => void published.push(event) };
};

export const admin = async (
  t: TestVault,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  body?: unknown,
) => {
  const answer = await t.request(method, url, body === undefined ? {} : { body });
  if (answer.status >= 300) throw new Error(`${method} ${url}: ${answer.status} ${answer.text}`);
  return answer.body as Record<string, unknown>;
};

/** An oauth2 credential holding `tokens`, and an agent with a reveal grant on it; the agent's API key. */
export const oauthCredential = async (
  t: TestVault,
  name: string,
  tokens: ConnectedTokens,
  agent = 'agent-42',
) => {
  const created = await admin(t, 'POST', '/v1/admin/credentials', {
    name,
    type: 'oauth2',
    scopes: ['api:read', 'api:write'],
    secret: tokens,
  });
  let apiKey: string | undefined;
  const existing = await t.request('GET', `/v1/admin/agents/${agent}`);
  if (existing.status === 404) {
    await admin(t, 'POST', '/v1/admin/agents', { name: agent });
    apiKey = (await admin(t, 'POST', `/v1/admin/agents/${agent}/keys`, { name: 'key' })).api_key as string;
  }
  await admin(t, 'POST', '/v1/admin/grants', { agent, credential: name, reveal: true, until_revoked: true });
  return { id: created.id as string, apiKey };
};
