import * as oauth from 'oauth4webapi';
import type { SecretFields } from '../../credentials/credential-types.js';
import { resolveEndpoints } from '../provider-template.js';
import { clientAuthFor } from '../token-client.js';
import type { ResolvedOAuthApp } from './refresh-types.js';
import { nestedKeysOf, secretToTokenSet } from './token-fields.js';

/**
 * Token revocation at the provider (RFC 7009) when an OAuth credential is removed: the refresh token
 * first (revoking it ends the grant, and with it the access tokens, at providers that implement §2.1),
 * then the access token, so that a provider that revokes only what it is given still ends both.
 */

export type RevocationOutcome =
  | { status: 'revoked'; tokens: number }
  /** The provider's catalog entry (or the app's discovery) names no revocation endpoint. */
  | { status: 'no_endpoint' }
  /** No OAuth app links the credential: the vault does not know where to revoke. */
  | { status: 'no_app' }
  | { status: 'failed'; code: string };

export interface RevocationDeps {
  fetch?: typeof fetch;
  allowHttp?: boolean;
  timeoutMs?: number;
}

export const revokeAtProvider = async (
  resolved: ResolvedOAuthApp | undefined,
  secret: SecretFields,
  deps: RevocationDeps = {},
): Promise<RevocationOutcome> => {
  if (!resolved) return { status: 'no_app' };
  const { provider, app } = resolved;
  let endpoint: string | undefined;
  try {
    endpoint = resolveEndpoints(provider, app.settings ?? {}, {
      allowHttp: deps.allowHttp ?? false,
    }).revocation;
  } catch {
    return { status: 'failed', code: 'app_misconfigured' };
  }
  if (!endpoint) return { status: 'no_endpoint' };
  const as: oauth.AuthorizationServer = { issuer: app.issuer ?? endpoint, revocation_endpoint: endpoint };
  // The credential's own tokens, then each nested one's (Slack's user token): each its refresh
  // token first.
  const held = secretToTokenSet(secret, nestedKeysOf(provider));
  const tokens: [string, string][] = [];
  for (const token of [held, ...Object.values(held.nested)]) {
    if (token.refreshToken) tokens.push([token.refreshToken, 'refresh_token']);
    if (token.accessToken) tokens.push([token.accessToken, 'access_token']);
  }
  let revoked = 0;
  for (const [token, hint] of tokens) {
    try {
      const response = await oauth.revocationRequest(
        as,
        { client_id: app.clientId },
        clientAuthFor(app.clientAuth ?? provider.clientAuth, app),
        token,
        {
          additionalParameters: { token_type_hint: hint },
          signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000),
          ...(deps.fetch ? { [oauth.customFetch]: deps.fetch } : {}),
          ...(deps.allowHttp ? { [oauth.allowInsecureRequests]: true } : {}),
        },
      );
      await oauth.processRevocationResponse(response);
      revoked += 1;
    } catch (error) {
      // The error's class and status only: a provider's message may quote what it was sent.
      const status = error instanceof oauth.ResponseBodyError ? error.status : 0;
      return { status: 'failed', code: status ? `http_${status}` : 'network_error' };
    }
  }
  return { status: 'revoked', tokens: revoked };
};
