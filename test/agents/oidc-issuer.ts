import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

export interface TestIssuer {
  /** `http://127.0.0.1:PORT`, as in its tokens' `iss`. */
  issuer: string;
  /** A client-credentials access token (a JWT) for `resource`, which becomes its `aud`. */
  token(clientId: string, resource: string): Promise<string>;
  stop(): Promise<void>;
}

const clientSecret = 'workload-test-client-secret-0123456789';

/**
 * A real OpenID Provider (panva/oidc-provider) on loopback standing in for a workload identity issuer
 * such as GitHub Actions: discovery, JWKS, and JWT access tokens from the client-credentials grant
 * with a resource indicator (RFC 8707) as the audience. Each client's tokens carry its `claims`
 * (`sub` is the client id), the way a CI platform stamps `repository` and `ref` into its tokens.
 */
export const startOidcIssuer = async (
  clients: Record<string, Record<string, string>>,
): Promise<TestIssuer> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const provider = new Provider(issuer, {
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'issuer-key-1', alg: 'RS256', use: 'sig' }] },
    clients: Object.keys(clients).map((clientId) => ({
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_post',
    })),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resourceIndicator: string) => ({
          scope: '',
          audience: resourceIndicator,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) => clients[token.clientId ?? ''] ?? {},
    ttl: { ClientCredentials: 300 },
  });
  server.on('request', provider.callback());

  return {
    issuer,
    async token(clientId, resource) {
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: clientId,
          client_secret: clientSecret,
          resource,
        }),
      });
      const body = (await response.json()) as {
        access_token?: string;
        error?: string;
        error_description?: string;
      };
      if (!body.access_token) throw new Error(`the issuer refused: ${body.error} ${body.error_description}`);
      return body.access_token;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};
