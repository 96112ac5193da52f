import type { SecretFields } from '../../credentials/credential-types.js';
import type { TokenClient } from '../token-client.js';
import { mergeRefreshed, type TokenFailure, type TokenOutcome, type TokenSet } from '../token-set.js';
import type { ResolvedOAuthApp } from './refresh-types.js';
import { nestedKeysOf, secretToTokenSet } from './token-fields.js';

/**
 * The token requests one refresh makes, by what the credential is (the refresher holds the lease
 * around them and writes what they bring back):
 *
 * - `refresh_token`: the credential's own token with its refresh token, then every further token it
 *   holds (Slack's user token next to the bot token) with that token's own refresh token, unless the
 *   first answer already renewed it. Each answer is merged into one token set to store at once.
 * - `client_credentials`: a new client-credentials grant (RFC 6749 §4.4), the app's own token; there
 *   is no refresh token, asking again is how it is renewed.
 */

export type RefreshKind =
  | { kind: 'refresh_token' }
  /** `scopes`: what the connection asked for, asked for again. */
  | { kind: 'client_credentials'; scopes: readonly string[] };

/**
 * For a client-credentials token these refusals name the app itself (its secret, or its right to the
 * grant): asking again cannot help, an operator must fix the app and connect again, so they are
 * final like a refused refresh token (`needs_reauth`), never retried.
 */
const finalForClientCredentials = new Set(['invalid_client', 'unauthorized_client']);

/** A nested token whose own refresh did not go through; the others' new tokens are still stored. */
export interface NestedFailure {
  key: string;
  failure: TokenFailure;
}

export interface GrantRequestsDeps {
  tokens: Pick<TokenClient, 'refresh' | 'clientCredentials'>;
  logger: { warn(object: object, message: string): void };
}

export const createGrantRequests = ({ tokens, logger }: GrantRequestsDeps) => {
  /** A request that could not even be built (an endpoint, a missing secret): an operator must act. */
  const guarded = async (credentialId: string, request: () => Promise<TokenOutcome>) => {
    try {
      return await request();
    } catch (error) {
      logger.warn(
        { credentialId, err: (error as Error).message },
        'oauth refresh: the OAuth app is misconfigured',
      );
      return {
        ok: false,
        failure: { kind: 'fatal', code: 'app_misconfigured', status: 0 },
      } satisfies TokenOutcome;
    }
  };

  return {
    /** The credential's own token: refreshed (narrowed to `narrowTo` when given), or asked for again. */
    async primary(
      credentialId: string,
      { provider, app }: ResolvedOAuthApp,
      secret: SecretFields,
      kind: RefreshKind,
      narrowTo?: readonly string[],
    ): Promise<TokenOutcome> {
      if (kind.kind === 'client_credentials') {
        const outcome = await guarded(credentialId, () =>
          tokens.clientCredentials({ provider, app, scopes: kind.scopes }),
        );
        return !outcome.ok && finalForClientCredentials.has(outcome.failure.code)
          ? { ok: false, failure: { ...outcome.failure, kind: 'reauth_required' } }
          : outcome;
      }
      return guarded(credentialId, () =>
        tokens.refresh({
          provider,
          app,
          refreshToken: secret.refresh_token ?? '',
          ...(narrowTo ? { scopes: [...narrowTo] } : {}),
        }),
      );
    },

    /**
     * What to store after the primary's `answer`: the stored set with that answer merged in, then
     * each nested token the answer left out refreshed with its own refresh token (single-use at
     * Slack: it is spent once sent, so the answers are all kept for one write). Stops at the first
     * nested refusal and reports it; whatever was renewed until then is in `merged`.
     */
    async withNested(
      credentialId: string,
      resolved: ResolvedOAuthApp,
      secret: SecretFields,
      answer: TokenSet,
    ): Promise<{ merged: TokenSet; renewed: number; failure?: NestedFailure }> {
      const stored = secretToTokenSet(secret, nestedKeysOf(resolved.provider));
      let merged = mergeRefreshed(stored, answer);
      let renewed = 0;
      for (const [key, token] of Object.entries(stored.nested)) {
        const refreshToken = token.refreshToken;
        if (refreshToken === undefined || key in answer.nested) continue;
        const outcome = await guarded(credentialId, () =>
          tokens.refresh({ provider: resolved.provider, app: resolved.app, refreshToken }),
        );
        if (!outcome.ok) return { merged, renewed, failure: { key, failure: outcome.failure } };
        merged = mergeRefreshed(merged, outcome.token, key);
        renewed += 1;
      }
      return { merged, renewed };
    },
  };
};

export type GrantRequests = ReturnType<typeof createGrantRequests>;
