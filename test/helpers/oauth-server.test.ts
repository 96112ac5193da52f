import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import { startOAuthServer, type TestOAuthServer } from './oauth-server.js';

const http = { [oauth.allowInsecureRequests]: true };

describe('the test OAuth server', () => {
  let op: TestOAuthServer;
  let as: oauth.AuthorizationServer;
  let client: oauth.Client;
  let auth: oauth.ClientAuth;
  let callbackServer: Awaited<ReturnType<typeof startCallbackServer>>;
  let redirectUri: string;

  beforeAll(async () => {
    callbackServer = await startCallbackServer();
    redirectUri = callbackServer.url;
    op = await startOAuthServer({ accessTokenTtl: 30, redirectUris: [redirectUri], slowDownFirstPoll: true });
    const issuer = new URL(op.issuer);
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, http));
    client = { client_id: op.client.client_id };
    auth = oauth.ClientSecretBasic(op.client.client_secret);
  });
  afterAll(async () => {
    await op.stop();
    await callbackServer.stop();
  });

  it('signs in, consents, returns a code with iss, and rotates refresh tokens', async () => {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'openid offline_access api:read api:write',
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();
    const page = await op.browser({ account: 'alice' }).get(url.href);
    const callback = page.url;
    expect(page.body).toBe(new URL(page.url).pathname + new URL(page.url).search);
    const params = oauth.validateAuthResponse(as, client, new URL(callback), state);
    expect(new URL(callback).searchParams.get('iss')).toBe(op.issuer);

    const before = op.tokenRequests('authorization_code');
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, verifier, http),
    );
    expect(op.tokenRequests('authorization_code')).toBe(before + 1);
    expect(tokens.expires_in).toBe(30);
    expect(tokens.refresh_token).toBeTruthy();
    // The access token is for the API (RFC 8707), so its scope is the API's; the ID token covers openid.
    expect(tokens.scope?.split(' ').sort()).toEqual(['api:read', 'api:write']);
    expect(tokens.id_token).toBeTruthy();
    const introspected = await op.introspect(tokens.access_token);
    expect(introspected).toMatchObject({ active: true, sub: 'alice', aud: op.resource });

    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, {
        ...http,
        additionalParameters: { scope: 'api:read' },
      }),
    );
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(await op.introspect(refreshed.access_token)).toMatchObject({ active: true, scope: 'api:read' });
    expect(op.tokenRequests('refresh_token')).toBe(1);
    expect(op.tokenSuccesses('refresh_token')).toBe(1);

    // The rotated-away refresh token is spent: reusing it fails (and revokes the grant, as providers do).
    const reuse = await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, http);
    expect(reuse.status).toBe(400);
    expect(await reuse.json()).toMatchObject({ error: 'invalid_grant' });
    expect(op.tokenSuccesses('refresh_token')).toBe(1);

    const revoke = await oauth.revocationRequest(as, client, auth, refreshed.access_token, http);
    await oauth.processRevocationResponse(revoke);
    expect(await op.introspect(refreshed.access_token)).toMatchObject({ active: false });
  });

  it('reports a denied consent as access_denied at the redirect URI', async () => {
    const url = new URL(as.authorization_endpoint!);
    const verifier = oauth.generateRandomCodeVerifier();
    url.search = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'openid api:read',
      state: 's1',
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();
    const callback = new URL((await op.browser({ account: 'bob', deny: true }).get(url.href)).url);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('state')).toBe('s1');
  });

  it('runs the device flow with an interval and slow_down', async () => {
    const started = await oauth.processDeviceAuthorizationResponse(
      as,
      client,
      await oauth.deviceAuthorizationRequest(
        as,
        client,
        auth,
        { scope: 'openid offline_access api:read' },
        http,
      ),
    );
    expect(started.interval).toBe(1);
    const poll = () => oauth.deviceCodeGrantRequest(as, client, auth, started.device_code, http);
    expect(await (await poll()).json()).toMatchObject({ error: 'slow_down' });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await (await poll()).json()).toMatchObject({ error: 'authorization_pending' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await (await poll()).json()).toMatchObject({ error: 'slow_down' });

    const page = await op.browser({ account: 'carol' }).approveDevice(started.user_code);
    expect(page.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const tokens = await oauth.processDeviceCodeResponse(as, client, await poll());
    expect(tokens.refresh_token).toBeTruthy();
    expect(await op.introspect(tokens.access_token)).toMatchObject({ active: true, sub: 'carol' });
  });

  it('issues client-credentials tokens, and injects token-endpoint failures', async () => {
    op.failTokenRequests({ grantType: 'client_credentials', status: 503, headers: { 'retry-after': '2' } });
    const failed = await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'api:read' }, http);
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).toBe('2');
    const tokens = await oauth.processClientCredentialsResponse(
      as,
      client,
      await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'api:read' }, http),
    );
    expect(await op.introspect(tokens.access_token)).toMatchObject({ active: true, scope: 'api:read' });
    expect(op.tokenRequests('client_credentials')).toBe(2);
    expect(op.tokenSuccesses('client_credentials')).toBe(1);
  });
});

/** The client's redirect URI: a real local server that answers with the query it was given. */
const startCallbackServer = async () => {
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
