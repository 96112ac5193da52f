import type { CredentialUse } from '../../access/agent-request.js';
import { VaultError } from '../../errors/vault-error.js';
import type { Clock } from '../../lib/clock.js';
import type { Store } from '../../store/database.js';
import type { ProviderEntry } from '../provider-schema.js';
import type { RefreshSettings, ResolveOAuthApp } from './refresh-types.js';
import type { Refresher } from './refresher.js';

/**
 * Downscoped tokens (issue 13 item 7): a retrieval whose `?scope=` is narrower than the credential's
 * scopes gets an access token the provider issued for only those scopes, by a refresh with a
 * narrower `scope` (RFC 6749 §6). Such a token is kept in memory per credential and scope set, for the
 * secret version it was issued under (a refresh of the credential moves the version and drops it),
 * and handed out until it is about to expire. Providers that cannot narrow answer
 * `scope_narrowing_unsupported`: the vault never hands out more than was asked without saying so.
 */

export const canNarrowScopes = (provider: ProviderEntry): boolean =>
  provider.refresh.narrowerScopes ?? provider.kind !== 'oauth2';

interface Narrowed {
  version: number;
  accessToken: string;
  tokenType: string;
  expiresAt: number | null;
}

export interface DownscopeDeps {
  store: Pick<Store, 'db'>;
  refresher: Pick<Refresher, 'refresh'>;
  resolveApp: ResolveOAuthApp;
  clock: Clock;
  settings: Pick<RefreshSettings, 'onDemandMs'>;
  maxEntries?: number;
}

export const createDownscoper = (deps: DownscopeDeps) => {
  const { store, refresher, resolveApp, clock, settings } = deps;
  const maxEntries = deps.maxEntries ?? 10_000;
  const cache = new Map<string, Narrowed>();

  const credentialScopes = async (credentialId: string): Promise<string[]> => {
    const row = await store.db
      .selectFrom('credentials')
      .select('scopes')
      .where('id', '=', credentialId)
      .executeTakeFirst();
    return row ? (JSON.parse(row.scopes) as string[]) : [];
  };

  const fresh = (entry: Narrowed | undefined, version: number): entry is Narrowed =>
    entry !== undefined &&
    entry.version === version &&
    (entry.expiresAt === null || entry.expiresAt - clock.now().getTime() > settings.onDemandMs);

  return {
    /** The use with a narrower access token when `requested` is narrower than the credential's scopes. */
    async narrow(use: CredentialUse, requested: readonly string[]): Promise<CredentialUse> {
      if (use.read.credential.type !== 'oauth2' || requested.length === 0) return use;
      const { namespace, credentialId } = use.allowed;
      const wanted = [...new Set(requested)].sort();
      const key = `${credentialId}\u0000${wanted.join(' ')}`;
      const withToken = (entry: Narrowed): CredentialUse => ({
        allowed: use.allowed,
        read: {
          ...use.read,
          secret: { ...use.read.secret, access_token: entry.accessToken, token_type: entry.tokenType },
        },
      });
      const cached = cache.get(key);
      if (fresh(cached, use.read.version)) return withToken(cached);

      const all = await credentialScopes(credentialId);
      if (all.length === 0 || all.every((scope) => wanted.includes(scope))) return use;
      const resolved = await resolveApp(namespace, credentialId);
      // Stored by hand, with no OAuth app: the vault has nobody to ask, and hands out the stored token
      // as it always has (the answer's `scopes` say what was granted and asked).
      if (!resolved) return use;
      if (!canNarrowScopes(resolved.provider) || !use.read.secret.refresh_token) {
        throw new VaultError('scope_narrowing_unsupported');
      }
      // Whoever holds the lease may rotate the refresh token first: try again with the new one.
      for (let attempt = 0; attempt < 3; attempt += 1) {
        let issued: Narrowed | undefined;
        const result = await refresher.refresh(namespace, credentialId, {
          trigger: 'downscope',
          narrowTo: { scopes: wanted, onNarrowed: (token) => (issued = token) },
        });
        if (issued) {
          if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
          cache.set(key, issued);
          return withToken(issued);
        }
        if (result.outcome === 'needs_reauth') throw new VaultError('credential_needs_reauth');
        if (result.outcome === 'retry_later' && result.code === 'invalid_scope') {
          throw new VaultError('scope_narrowing_unsupported');
        }
        if (result.outcome === 'retry_later' || result.outcome === 'not_refreshable') break;
      }
      throw new VaultError('credential_refresh_failed', undefined, { details: { retryAfter: 5 } });
    },
  };
};

export type Downscoper = ReturnType<typeof createDownscoper>;
