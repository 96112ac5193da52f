import type { EventPublisher } from '../../events/event-types.js';
import type { Clock } from '../../lib/clock.js';
import type { Store } from '../../store/database.js';
import { nextRefreshAt } from './refresh-plan.js';
import { refreshStateRepo } from './refresh-state-repo.js';
import type { RefreshSettings } from './refresh-types.js';

/** A token a connection (consent, device flow) has just stored as a credential's secret version. */
export interface ConnectedToken {
  namespace: string;
  credentialId: string;
  /** The secret version the connection wrote. */
  version: number;
  /** When its access token expires (ISO-8601); null when the provider says it does not. */
  accessExpiresAt: string | null;
  /** The catalog's assumed lifetime stands in for an expiry the provider did not give. */
  expiryAssumed: boolean;
  /** Whether the connection brought a refresh token. */
  refreshable: boolean;
}

export interface ConnectedTokensDeps {
  store: Pick<Store, 'db'>;
  events: Pick<EventPublisher, 'publish'>;
  clock: Clock;
  settings: Pick<RefreshSettings, 'marginMs' | 'jitterMs' | 'idleRefreshMs'>;
  random?: (() => number) | undefined;
}

/**
 * The refresh schedule of a token a connection stored, from what the provider said at once: without
 * it, the vault would know nothing of the new token's expiry until the scheduler adopted the
 * credential (a refresh made only to learn it), and an agent could be handed an expired token in the
 * meantime. A credential that was waiting for its user (`needs_reauth`) is announced as
 * `credential.reauthorized` in the same transaction. Should the process stop between the
 * connection's write and this one, the scheduler's adoption still finds the credential.
 */
export const createConnectedTokens = ({ store, events, clock, settings, random }: ConnectedTokensDeps) => ({
  async connected(token: ConnectedToken): Promise<void> {
    const now = clock.now().getTime();
    const next = nextRefreshAt(
      {
        now,
        accessExpiresAt: token.accessExpiresAt === null ? null : Date.parse(token.accessExpiresAt),
        issuedAt: now,
        refreshable: token.refreshable,
      },
      settings,
      random,
    );
    const at = new Date(now).toISOString();
    await store.db.transaction().execute(async (trx) => {
      const before = await refreshStateRepo.get(trx, token.credentialId);
      await refreshStateRepo.upsert(trx, {
        credential_id: token.credentialId,
        namespace: token.namespace,
        status: 'active',
        secret_version: token.version,
        access_expires_at: token.accessExpiresAt,
        expiry_assumed: token.expiryAssumed ? 1 : 0,
        next_refresh_at: next === null ? null : new Date(next).toISOString(),
        last_refresh_at: at,
        failures: 0,
        last_error: null,
        updated_at: at,
      });
      if (before?.status !== 'needs_reauth') return;
      await events.publish(
        {
          type: 'credential.reauthorized',
          namespace: token.namespace,
          data: { credential_id: token.credentialId },
        },
        trx,
      );
    });
  },
});
