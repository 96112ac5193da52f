import type { ProviderEntry } from '../provider-schema.js';
import type { OAuthClientApp } from '../token-client.js';

/**
 * The OAuth app a credential was connected through. Structurally the same as the one the connect
 * flow exports from `src/oauth/oauth-app-resolver.ts`: the refresher codes against this type, and the
 * composition root hands it that resolver.
 */
export interface ResolvedOAuthApp {
  appId: string;
  provider: ProviderEntry;
  app: OAuthClientApp;
}

/** Undefined when no OAuth app links the credential (an oauth2 credential stored by hand). */
export type ResolveOAuthApp = (
  namespace: string,
  credentialId: string,
) => Promise<ResolvedOAuthApp | undefined>;

/** How eagerly tokens are refreshed. Every value is a setting (config-schema.ts). */
export interface RefreshSettings {
  /** Refresh this long before the access token expires. */
  marginMs: number;
  /** Up to this much earlier again, at random, so tokens issued together are not refreshed together. */
  jitterMs: number;
  /** A retrieval that finds less than this left refreshes first (and waits for it). */
  onDemandMs: number;
  /** A refresh token nothing used is refreshed at least this often (idle expiry). */
  idleRefreshMs: number;
  /** First retry after a retryable failure; doubles per failure up to `backoffMaxMs`. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** How long a lease holds: longer than a token request may take. */
  leaseMs: number;
  /** Lifetime assumed when neither the provider's answer nor its catalog entry gives one. */
  defaultLifetimeMs: number;
}

export const refreshDefaults: RefreshSettings = {
  marginMs: 5 * 60_000,
  jitterMs: 60_000,
  onDemandMs: 30_000,
  // Under the shortest idle expiry in the catalog (check in refresh-plan.test.ts).
  idleRefreshMs: 7 * 86_400_000,
  backoffBaseMs: 10_000,
  backoffMaxMs: 15 * 60_000,
  leaseMs: 30_000,
  defaultLifetimeMs: 3_600_000,
};

/** The refresh state of one credential as `credential show` reports it. */
export interface RefreshStatus {
  status: 'active' | 'failing' | 'needs_reauth' | 'unmanaged';
  accessExpiresAt: string | null;
  expiryAssumed: boolean;
  lastRefreshAt: string | null;
  nextRefreshAt: string | null;
  failures: number;
  lastError: string | null;
}

/** What one refresh came to. */
export type RefreshResult =
  | { outcome: 'refreshed'; version: number }
  /** Another process or caller refreshed it meanwhile (we waited for and got its result). */
  | { outcome: 'refreshed_elsewhere'; version: number }
  | { outcome: 'retry_later'; code: string; nextRefreshAt: string }
  | { outcome: 'needs_reauth'; code: string }
  | {
      outcome: 'not_refreshable';
      reason: 'not_oauth' | 'no_app' | 'no_refresh_token' | 'needs_reauth' | 'fatal';
    };
