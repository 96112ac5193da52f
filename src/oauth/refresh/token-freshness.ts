import type { CredentialUse } from '../../access/agent-request.js';
import type { CredentialService } from '../../credentials/credential-service.js';
import { VaultError } from '../../errors/vault-error.js';
import type { Clock } from '../../lib/clock.js';
import type { Store } from '../../store/database.js';
import { needsRefreshNow } from './refresh-plan.js';
import { refreshStateRepo } from './refresh-state-repo.js';
import type { RefreshSettings } from './refresh-types.js';
import type { Refresher, RefreshTrigger } from './refresher.js';

/**
 * The on-demand half of refresh, a step of the agent request path: an OAuth token that is expired or
 * about to expire is refreshed before it is handed out (or injected), and the caller waits for that
 * refresh — its own, or the one already in flight in this or another process.
 *
 * The expiry of the secret version just read is remembered per credential; it cannot go stale,
 * because a refresh (here or on another replica) writes a new version, and a version this process has
 * not seen is looked up again. So a retrieval of a fresh token costs no read of the refresh table.
 */

export interface TokenFreshnessDeps {
  store: Pick<Store, 'db'>;
  refresher: Pick<Refresher, 'refresh'>;
  credentials: Pick<CredentialService, 'readCurrentSecret'>;
  clock: Clock;
  settings: Pick<RefreshSettings, 'onDemandMs'>;
  maxEntries?: number;
}

interface KnownExpiry {
  version: number;
  expiresAt: number | null;
}

export const createTokenFreshness = (deps: TokenFreshnessDeps) => {
  const { store, refresher, credentials, clock, settings } = deps;
  const maxEntries = deps.maxEntries ?? 10_000;
  const known = new Map<string, KnownExpiry>();

  const expiryOf = async (credentialId: string, version: number): Promise<number | null> => {
    const cached = known.get(credentialId);
    if (cached?.version === version) return cached.expiresAt;
    const row = await refreshStateRepo.get(store.db, credentialId);
    // A state describing another version (a secret stored by hand, not yet adopted) says nothing.
    const expiresAt =
      row && Number(row.secret_version) === version && row.access_expires_at
        ? Date.parse(row.access_expires_at)
        : null;
    if (known.size >= maxEntries) known.delete(known.keys().next().value as string);
    known.set(credentialId, { version, expiresAt });
    return expiresAt;
  };

  return {
    /** The use to act on: the same when the token is fresh, else one with the refreshed secret. */
    async ensureFresh(use: CredentialUse, trigger: RefreshTrigger): Promise<CredentialUse> {
      if (use.read.credential.type !== 'oauth2') return use;
      const { namespace, credentialId } = use.allowed;
      const now = clock.now().getTime();
      const expiresAt = await expiryOf(credentialId, use.read.version);
      if (!needsRefreshNow(now, expiresAt, settings.onDemandMs)) return use;
      const result = await refresher.refresh(namespace, credentialId, {
        trigger,
        ifVersion: use.read.version,
        respectBackoff: true,
      });
      switch (result.outcome) {
        case 'refreshed':
        case 'refreshed_elsewhere':
          // A fresh view: the new version moved the credential's scope, so the cache reloads it.
          return { allowed: use.allowed, read: await credentials.readCurrentSecret(use.allowed) };
        case 'needs_reauth':
          throw new VaultError('credential_needs_reauth');
        case 'retry_later':
          // The current token stays in use until it expires; after that there is nothing to give.
          if (expiresAt !== null && expiresAt <= now) {
            throw new VaultError('credential_refresh_failed', undefined, {
              details: {
                retryAfter: Math.max(1, Math.ceil((Date.parse(result.nextRefreshAt) - now) / 1000)),
              },
            });
          }
          return use;
        case 'not_refreshable':
          if (result.reason === 'needs_reauth') throw new VaultError('credential_needs_reauth');
          return use;
      }
    },
    /**
     * After an upstream refused the token before its expiry (revoked early, clock skew): one refresh
     * of the refused version (or the refresh that already replaced it, here or on another replica)
     * and the use with the newer secret, read for the decision `use` came from; undefined when there
     * is no newer token (the caller answers the refusal, never loops).
     */
    async afterRefusal(use: CredentialUse, trigger: RefreshTrigger): Promise<CredentialUse | undefined> {
      if (use.read.credential.type !== 'oauth2') return undefined;
      const result = await refresher.refresh(use.allowed.namespace, use.allowed.credentialId, {
        trigger,
        ifVersion: use.read.version,
        respectBackoff: true,
      });
      if (result.outcome !== 'refreshed' && result.outcome !== 'refreshed_elsewhere') return undefined;
      return { allowed: use.allowed, read: await credentials.readCurrentSecret(use.allowed) };
    },
    /** The expiry this process knows for a version (tests, `credential show`). */
    expiryOf,
  };
};

export type TokenFreshness = ReturnType<typeof createTokenFreshness>;
