import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Channel } from '../../access/access-types.js';
import type { CredentialUse } from '../../access/agent-request.js';
import type { AuditRecorder } from '../../audit/audit-types.js';
import type { Config } from '../../config/config-schema.js';
import type { CredentialService } from '../../credentials/credential-service.js';
import { VaultError } from '../../errors/vault-error.js';
import type { EventPublisher } from '../../events/event-types.js';
import type { Clock } from '../../lib/clock.js';
import type { AuditContext } from '../../audit/audit-context.js';
import type { Component } from '../../lib/components.js';
import type { Store } from '../../store/database.js';
import { createTokenClient, type TokenClientDeps } from '../token-client.js';
import { createRefreshScheduler, type SchedulerOptions } from './refresh-scheduler.js';
import { refreshStateRepo, toRefreshStatus } from './refresh-state-repo.js';
import {
  refreshDefaults,
  type RefreshSettings,
  type RefreshStatus,
  type ResolveOAuthApp,
} from './refresh-types.js';
import { createRefresher, type RefreshTrigger } from './refresher.js';
import { createDownscoper } from './downscope.js';
import { revokeAtProvider, type RevocationOutcome } from './revocation.js';
import { createTokenFreshness } from './token-freshness.js';
import { createConnectedTokens } from './connected-token.js';

/**
 * The OAuth refresh capability as the vault is built with it: the refresher (lease and all), the
 * on-demand step of the agent request path, the scheduler worker, and what the admin API and CLI ask
 * (`credential refresh`, `credential show`).
 */

/** What the composition root (and tests) may hand in. */
export interface OAuthRefreshWiring {
  /** Which OAuth app a credential was connected through (the connect flow's resolver). */
  resolveApp?: ResolveOAuthApp | undefined;
  /** Where `credential.needs_reauth` / `credential.reauthorized` go (the events outbox). */
  events?: EventPublisher | undefined;
  /** Token endpoint calls: the guarded fetch by default; tests allow http to local servers. */
  tokenClient?: Omit<TokenClientDeps, 'clock'> | undefined;
  settings?: Partial<RefreshSettings> | undefined;
  scheduler?: Partial<SchedulerOptions> | undefined;
  random?: (() => number) | undefined;
}

export interface OAuthRefreshDeps {
  config: Pick<
    Config,
    'oauthRefreshMargin' | 'oauthRefreshJitter' | 'oauthIdleRefreshDays' | 'oauthRefreshPollMs'
  >;
  store: Pick<Store, 'db'>;
  credentials: Pick<CredentialService, 'openForRefresh' | 'readCurrentSecret' | 'get' | 'remove'>;
  audit: Pick<AuditRecorder, 'recordInTransaction'>;
  clock: Clock;
  logger: Logger;
  fetch: typeof fetch;
  wiring?: OAuthRefreshWiring | undefined;
}

/** Until an OAuth app can be linked to a credential, no credential has one: nothing is refreshable. */
const noOAuthApps: ResolveOAuthApp = async () => undefined;

/**
 * Until the events outbox is wired in, events go to the log (never a secret: ids, names, codes), so
 * an operator still sees them.
 */
export const loggedEvents = (logger: Pick<Logger, 'info'>): EventPublisher => ({
  publish: async (event) =>
    logger.info({ event: event.type, namespace: event.namespace, data: event.data }, 'vault event'),
});

export const createOAuthRefresh = ({
  config,
  store,
  credentials,
  audit,
  clock,
  logger,
  fetch,
  wiring = {},
}: OAuthRefreshDeps) => {
  const settings: RefreshSettings = {
    ...refreshDefaults,
    marginMs: config.oauthRefreshMargin * 1000,
    jitterMs: config.oauthRefreshJitter * 1000,
    idleRefreshMs: config.oauthIdleRefreshDays * 86_400_000,
    ...wiring.settings,
  };
  const events = wiring.events ?? loggedEvents(logger);
  const resolveApp = wiring.resolveApp ?? noOAuthApps;
  const log = logger.child({ component: 'oauth-refresh' });
  const refresher = createRefresher({
    store,
    credentials,
    tokens: createTokenClient({
      clock,
      fetch,
      ...wiring.tokenClient,
      timeoutMs: wiring.tokenClient?.timeoutMs ?? Math.min(15_000, settings.leaseMs / 2),
    }),
    resolveApp,
    audit,
    events,
    clock,
    settings,
    owner: `${process.pid}-${randomUUID()}`,
    logger: log,
    ...(wiring.random ? { random: wiring.random } : {}),
  });
  const freshness = createTokenFreshness({ store, refresher, credentials, clock, settings });
  const downscoper = createDownscoper({ store, refresher, resolveApp, clock, settings });
  const scheduler = createRefreshScheduler({
    store,
    refresher,
    events,
    clock,
    logger: log,
    options: { pollMs: config.oauthRefreshPollMs, ...wiring.scheduler },
  });

  const connectedTokens = createConnectedTokens({ store, events, clock, settings, random: wiring.random });

  const triggerOf = (channel: Channel): RefreshTrigger => (channel === 'proxy' ? 'proxy' : 'retrieval');

  return {
    refresher,
    scheduler,
    settings,
    /** A connection stored a new token: schedule its refresh from the expiry the provider gave. */
    connected: connectedTokens.connected,
    /**
     * The agent request path's freshen step: a token about to expire is refreshed first, and a
     * retrieval asking for fewer scopes than the credential has gets a downscoped token.
     */
    freshen: async (use: CredentialUse, channel: Channel, requestedScopes: readonly string[]) => {
      const current = await freshness.ensureFresh(use, triggerOf(channel));
      return channel === 'reveal' && requestedScopes.length > 0
        ? downscoper.narrow(current, requestedScopes)
        : current;
    },

    /** The HTTP proxy's answer to an upstream 401: refresh once, and retry when there is a newer token. */
    onUnauthorized: async (context: { namespace: string; credentialId: string; version: number }) => {
      const result = await refresher.refresh(context.namespace, context.credentialId, {
        trigger: 'proxy',
        ifVersion: context.version,
        respectBackoff: true,
      });
      return result.outcome === 'refreshed' || result.outcome === 'refreshed_elsewhere'
        ? ('retry' as const)
        : ('pass' as const);
    },

    /** The MCP proxy's answer to an upstream 401: the use with a refreshed token, once, or undefined. */
    reauthorize: (use: CredentialUse) => freshness.afterRefusal(use, 'proxy'),

    /** `tokenvault credential refresh NAME`: one refresh now (or the one in flight). */
    async refreshNow(namespace: string, name: string, user?: string) {
      const credential = await credentials.get(namespace, name, user);
      if (credential.type !== 'oauth2') throw new VaultError('credential_not_refreshable');
      const result = await refresher.refresh(namespace, credential.id, { trigger: 'admin' });
      if (result.outcome === 'not_refreshable') {
        if (result.reason === 'needs_reauth') throw new VaultError('credential_needs_reauth');
        throw new VaultError(
          'credential_not_refreshable',
          result.reason === 'no_app'
            ? `No OAuth app links credential "${name}", so the vault cannot refresh it; connect it through an OAuth app (tokenvault connect).`
            : `Credential "${name}" has no refresh token; connect it again with offline access.`,
        );
      }
      return { result, refresh: await this.status(namespace, credential.id) };
    },

    /**
     * Removes a credential; an OAuth one's tokens are then revoked at its provider (RFC 7009). The
     * secret and the app are read first (the removal takes the link to the app with it); the
     * revocation comes after the commit, so a provider that is down cannot keep a credential in the
     * vault, and its outcome is reported (undefined: not an OAuth credential).
     */
    async removeCredential(
      namespace: string,
      name: string,
      ctx?: AuditContext,
      user?: string,
    ): Promise<RevocationOutcome | undefined> {
      // Not found (or not OAuth): the removal itself refuses, or removes, and records it as always.
      const credential = await credentials.get(namespace, name, user).catch(() => undefined);
      if (credential?.type !== 'oauth2') {
        await credentials.remove(namespace, name, ctx, user);
        return undefined;
      }
      const opened = await credentials.openForRefresh(namespace, credential.id);
      const resolved = await resolveApp(namespace, credential.id);
      await credentials.remove(namespace, name, ctx, user);
      await refreshStateRepo.remove(store.db, credential.id);
      const outcome = opened
        ? await revokeAtProvider(resolved, opened.secret, {
            // The provider's endpoints, reached like its token endpoint.
            fetch: wiring.tokenClient?.fetch ?? fetch,
            ...(wiring.tokenClient?.allowHttp ? { allowHttp: true } : {}),
          })
        : ({ status: 'failed', code: 'secret_unreadable' } as const);
      log.info({ credentialId: credential.id, revocation: outcome }, 'oauth credential removed');
      return outcome;
    },

    /** What `credential show` reports; null for a credential the refresher has not seen. */
    async status(_namespace: string, credentialId: string): Promise<RefreshStatus | null> {
      const row = await refreshStateRepo.get(store.db, credentialId);
      return row ? toRefreshStatus(row) : null;
    },

    worker: (): Component => ({
      name: 'oauth refresh scheduler',
      start: () => scheduler.start(),
      stop: () => scheduler.stop(),
    }),
  };
};

export type OAuthRefresh = ReturnType<typeof createOAuthRefresh>;
