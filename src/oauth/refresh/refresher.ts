import type { AuditRecorder } from '../../audit/audit-types.js';
import type { CredentialService } from '../../credentials/credential-service.js';
import type { EventPublisher } from '../../events/event-types.js';
import type { Clock } from '../../lib/clock.js';
import type { SecretFields } from '../../credentials/credential-types.js';
import type { Store } from '../../store/database.js';
import type { TokenClient } from '../token-client.js';
import { createGrantRequests, type RefreshKind } from './refresh-grant.js';
import { createRefreshOutcomes } from './refresh-outcomes.js';
import { nextRefreshAt } from './refresh-plan.js';
import { refreshStateRepo, type RefreshStateRow, type StatePatch } from './refresh-state-repo.js';
import type { RefreshResult, RefreshSettings, ResolveOAuthApp } from './refresh-types.js';
import { earliestExpiry, tokenSetToSecret } from './token-fields.js';

/**
 * One credential's refresh, at most one in flight across every process sharing the database:
 *
 *   single-flight in this process → the lease in the database (fenced) → re-read the secret → the
 *   token endpoint (refresh-grant.ts: the credential's refresh token, then each nested token's own;
 *   or, for a client-credentials credential, a new grant) → one transaction: check the fence, store
 *   the new version (every rotated refresh token with its access token), the schedule, the audit
 *   event → release
 *
 * A caller that finds the lease held waits for the holder's outcome and returns it. Nothing here
 * retries in a loop: a retryable failure is written as the next time to try (backoff), a refusal of
 * the grant as `needs_reauth`, once (refresh-outcomes.ts).
 */

export type RefreshTrigger = 'scheduler' | 'retrieval' | 'proxy' | 'admin' | 'downscope';

export interface RefreshOptions {
  trigger: RefreshTrigger;
  /**
   * The secret version the caller found stale. When the stored version has moved on, someone
   * refreshed it meanwhile and that result is returned. Absent: refresh whatever is stored (admin).
   */
  ifVersion?: number | undefined;
  /** Do not call the provider while backing off after failures (retrievals), only report it. */
  respectBackoff?: boolean | undefined;
  /**
   * Ask for an access token with only these scopes (RFC 6749 §6). Its token is handed to `onNarrowed`
   * and not stored as the credential's; a refresh token the answer rotates is stored, with the
   * credential's own access token kept as it was.
   */
  narrowTo?:
    | {
        scopes: readonly string[];
        onNarrowed: (token: {
          accessToken: string;
          tokenType: string;
          expiresAt: number | null;
          version: number;
        }) => void;
      }
    | undefined;
}

export interface RefresherLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}

export interface RefresherDeps {
  store: Pick<Store, 'db'>;
  credentials: Pick<CredentialService, 'openForRefresh'>;
  tokens: Pick<TokenClient, 'refresh' | 'clientCredentials'>;
  resolveApp: ResolveOAuthApp;
  audit: Pick<AuditRecorder, 'recordInTransaction'>;
  events: EventPublisher;
  clock: Clock;
  settings: RefreshSettings;
  /** This process's lease owner name. */
  owner: string;
  logger: RefresherLogger;
  random?: () => number;
  /** How often a caller waiting on another process's lease looks again. */
  waitPollMs?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const createRefresher = (deps: RefresherDeps) => {
  const { store, credentials, tokens, resolveApp, audit, events, clock, settings, owner, logger } = deps;
  const { db } = store;
  const random = deps.random ?? Math.random;
  const waitPollMs = deps.waitPollMs ?? 25;
  const inFlight = new Map<string, Promise<RefreshResult>>();
  const now = () => clock.now().getTime();
  const grants = createGrantRequests({ tokens, logger });
  const { recordRefresh, announceReauth, waitAfter, narrowed, failed } = createRefreshOutcomes({
    db,
    credentials,
    audit,
    events,
    clock,
    settings,
    random,
    logger,
  });

  /** The state row, made on first sight of the credential (adopted with its expiry unknown). */
  const stateOf = async (namespace: string, credentialId: string, version: number) => {
    const row = await refreshStateRepo.get(db, credentialId);
    if (row) return row;
    const at = iso(now());
    await db
      .insertInto('oauth_refresh_state')
      .values({
        credential_id: credentialId,
        namespace,
        status: 'active',
        secret_version: version,
        access_expires_at: null,
        expiry_assumed: 1,
        next_refresh_at: at,
        last_refresh_at: null,
        failures: 0,
        last_error: null,
        lease_owner: null,
        lease_expires_at: null,
        fence: 0,
        updated_at: at,
      })
      .onConflict((oc) => oc.column('credential_id').doNothing())
      .execute();
    return (await refreshStateRepo.get(db, credentialId)) as RefreshStateRow;
  };

  /** What another holder's finished lease left: its result, as this caller's. */
  const outcomeOf = (
    row: RefreshStateRow,
    seenVersion: number | undefined,
    currentVersion?: number,
  ): RefreshResult | undefined => {
    if (seenVersion !== undefined && Number(row.secret_version) > seenVersion) {
      return { outcome: 'refreshed_elsewhere', version: Number(row.secret_version) };
    }
    // These states describe the secret they saw: a newer one (reconnected, replaced) is tried afresh.
    if (currentVersion !== undefined && currentVersion > Number(row.secret_version)) return undefined;
    if (row.status === 'needs_reauth')
      return { outcome: 'needs_reauth', code: row.last_error ?? 'invalid_grant' };
    if (row.status === 'unmanaged') return { outcome: 'not_refreshable', reason: 'no_app' };
    return undefined;
  };

  /** Waits until nobody holds the lease (or it expires), then reads what the holder left. */
  const waitForLease = async (credentialId: string): Promise<RefreshStateRow | undefined> => {
    for (;;) {
      const row = await refreshStateRepo.get(db, credentialId);
      if (!row) return undefined;
      if (row.lease_owner === null || (row.lease_expires_at ?? '') <= iso(now())) return row;
      await sleep(waitPollMs);
    }
  };

  /** How the credential's token is renewed: its refresh token, a client-credentials grant, or not at all. */
  const kindOf = async (credentialId: string, secret: SecretFields): Promise<RefreshKind | undefined> => {
    if (secret.refresh_token) return { kind: 'refresh_token' };
    const scopes = await refreshStateRepo.clientCredentialsScopes(db, credentialId);
    return scopes ? { kind: 'client_credentials', scopes } : undefined;
  };

  /** The refresh proper, with the lease held (`fence`). */
  const refreshHeld = async (
    namespace: string,
    credentialId: string,
    fence: number,
    options: RefreshOptions,
  ): Promise<RefreshResult> => {
    const finish = (patch: StatePatch) => refreshStateRepo.finish(db, credentialId, fence, patch, iso(now()));
    const opened = await credentials.openForRefresh(namespace, credentialId);
    if (!opened) {
      await refreshStateRepo.remove(db, credentialId);
      return { outcome: 'not_refreshable', reason: 'not_oauth' };
    }
    const { credential, version, secret, write } = opened;
    if (options.ifVersion !== undefined && version > options.ifVersion) {
      // Refreshed between the caller's read and this lease: nothing to do. (A state older than the
      // secret means the secret was replaced by other means: refresh it to learn its expiry.)
      const row = await refreshStateRepo.get(db, credentialId);
      if (row && Number(row.secret_version) >= version) {
        await finish({});
        return { outcome: 'refreshed_elsewhere', version };
      }
    }
    if (credential.type !== 'oauth2') {
      await refreshStateRepo.remove(db, credentialId);
      return { outcome: 'not_refreshable', reason: 'not_oauth' };
    }
    if (credential.status === 'needs_reauth') {
      await finish({ status: 'needs_reauth', next_refresh_at: null });
      return { outcome: 'not_refreshable', reason: 'needs_reauth' };
    }
    const resolved = await resolveApp(namespace, credentialId);
    const kind = resolved ? await kindOf(credentialId, secret) : undefined;
    if (!resolved || !kind) {
      await finish({ status: 'unmanaged', next_refresh_at: null, secret_version: version });
      return { outcome: 'not_refreshable', reason: resolved ? 'no_refresh_token' : 'no_app' };
    }
    if (options.narrowTo && kind.kind === 'client_credentials') {
      // The app's own token has no refresh token to narrow with (the downscoper says so first).
      await finish({});
      return { outcome: 'retry_later', code: 'invalid_scope', nextRefreshAt: iso(now()) };
    }

    const startedAt = now();
    const answer = await grants.primary(credentialId, resolved, secret, kind, options.narrowTo?.scopes);
    if (answer.ok && options.narrowTo) {
      return narrowed(namespace, credentialId, credential.name, fence, secret, answer.token, write, options);
    }
    if (!answer.ok && options.narrowTo && answer.failure.kind !== 'reauth_required') {
      // A refusal of the narrower scope says nothing about the credential's own refresh.
      await finish({});
      return { outcome: 'retry_later', code: answer.failure.code, nextRefreshAt: iso(now()) };
    }
    if (!answer.ok) {
      return failed(namespace, credentialId, credential.name, version, fence, answer.failure, options);
    }
    const {
      merged,
      renewed,
      failure: nestedFailure,
    } = await grants.withNested(credentialId, resolved, secret, answer.token);
    const at = now();
    const expiry = earliestExpiry(merged);
    const expiresAt = expiry === undefined ? null : Date.parse(expiry);
    const next = nextRefreshAt(
      { now: at, accessExpiresAt: expiresAt, issuedAt: startedAt, refreshable: true },
      settings,
      random,
    );
    // A nested token refused or not renewed: the tokens that were renewed are stored all the same
    // (a single-use refresh token sent is spent), and the state says what is wrong with the rest.
    const failures = nestedFailure
      ? Number((await refreshStateRepo.get(db, credentialId))?.failures ?? 0) + 1
      : 0;
    const outcome: StatePatch = !nestedFailure
      ? { status: 'active', failures: 0, last_error: null, next_refresh_at: next === null ? null : iso(next) }
      : nestedFailure.failure.kind === 'reauth_required'
        ? {
            status: 'needs_reauth',
            failures: 0,
            last_error: nestedFailure.failure.code,
            next_refresh_at: null,
          }
        : {
            status: 'failing',
            failures,
            last_error: nestedFailure.failure.code,
            next_refresh_at: iso(at + waitAfter(nestedFailure.failure, failures)),
          };
    const rotated =
      answer.token.refreshToken !== undefined && answer.token.refreshToken !== secret.refresh_token;
    const written = await db.transaction().execute(async (trx) => {
      // The fence first: a holder whose lease was taken over writes nothing.
      const held = await refreshStateRepo.finish(
        trx,
        credentialId,
        fence,
        {
          ...outcome,
          access_expires_at: expiresAt === null ? null : iso(expiresAt),
          expiry_assumed: merged.expiresAtAssumed ? 1 : 0,
          last_refresh_at: iso(at),
        },
        iso(at),
      );
      if (!held) return undefined;
      const newVersion = await write(trx, tokenSetToSecret(merged), iso(at));
      await trx
        .updateTable('oauth_refresh_state')
        .set({ secret_version: newVersion })
        .where('credential_id', '=', credentialId)
        .execute();
      if (kind.kind === 'client_credentials') {
        // Renewed here from now on: the credential no longer expires with one token (connections
        // made before migration 0015 carried the first token's expiry).
        await trx
          .updateTable('credentials')
          .set({ expires_at: null })
          .where('id', '=', credentialId)
          .where('expires_at', 'is not', null)
          .execute();
      }
      await recordRefresh(
        trx,
        namespace,
        credential.name,
        { ok: true },
        {
          credential_id: credentialId,
          version: newVersion,
          trigger: options.trigger,
          rotated,
          grant: kind.kind,
          ...(renewed > 0 ? { nested_renewed: renewed } : {}),
          ...(nestedFailure
            ? { nested_failed: nestedFailure.key, provider_error: nestedFailure.failure.code }
            : {}),
        },
      );
      if (nestedFailure?.failure.kind === 'reauth_required') {
        await announceReauth(trx, namespace, credentialId, credential.name, nestedFailure.failure, options);
      }
      return newVersion;
    });
    if (written === undefined) {
      // Our lease ran out and another process took over: its refresh stands, this answer is dropped.
      logger.warn({ credentialId, trigger: options.trigger }, 'oauth refresh: lease lost before the write');
      const row = await waitForLease(credentialId);
      return (
        (row && outcomeOf(row, version)) ?? {
          outcome: 'retry_later',
          code: 'lease_lost',
          nextRefreshAt: iso(now()),
        }
      );
    }
    if (nestedFailure) {
      logger.warn(
        { credentialId, nested: nestedFailure.key, code: nestedFailure.failure.code },
        'oauth refresh: a nested token was not renewed',
      );
      if (nestedFailure.failure.kind === 'reauth_required') {
        return { outcome: 'needs_reauth', code: nestedFailure.failure.code };
      }
    }
    return { outcome: 'refreshed', version: written };
  };

  /** Takes the lease or waits for whoever has it; loops only while leases change hands. */
  const run = async (
    namespace: string,
    credentialId: string,
    options: RefreshOptions,
  ): Promise<RefreshResult> => {
    const opened = await credentials.openForRefresh(namespace, credentialId);
    if (!opened) return { outcome: 'not_refreshable', reason: 'not_oauth' };
    if (opened.credential.type !== 'oauth2') return { outcome: 'not_refreshable', reason: 'not_oauth' };
    const seen = options.ifVersion ?? opened.version;
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const row = await stateOf(namespace, credentialId, opened.version);
      const known = outcomeOf(row, options.ifVersion, opened.version);
      if (known) return known;
      if (options.respectBackoff && Number(row.failures) > 0 && (row.next_refresh_at ?? '') > iso(now())) {
        return {
          outcome: 'retry_later',
          code: row.last_error ?? 'backoff',
          nextRefreshAt: row.next_refresh_at ?? '',
        };
      }
      const at = now();
      const fence = await refreshStateRepo.claim(
        db,
        credentialId,
        owner,
        iso(at),
        iso(at + settings.leaseMs),
      );
      if (fence !== undefined) {
        try {
          return await refreshHeld(namespace, credentialId, fence, { ...options, ifVersion: seen });
        } catch (error) {
          // Unexpected (database, key provider): release the lease and retry soon, not in a loop.
          await refreshStateRepo
            .finish(
              db,
              credentialId,
              fence,
              { next_refresh_at: iso(now() + settings.backoffBaseMs) },
              iso(now()),
            )
            .catch(() => undefined);
          throw error;
        }
      }
      const after = await waitForLease(credentialId);
      if (!after) return { outcome: 'not_refreshable', reason: 'not_oauth' };
      const result = outcomeOf(after, seen);
      if (result) return result;
      if (after.status === 'failing' && after.last_error) {
        return { outcome: 'retry_later', code: after.last_error, nextRefreshAt: after.next_refresh_at ?? '' };
      }
    }
    return { outcome: 'retry_later', code: 'lease_contended', nextRefreshAt: iso(now()) };
  };

  return {
    /**
     * Refreshes the credential (or waits for the refresh in flight) and returns the outcome. Callers
     * in this process share one promise per credential.
     */
    refresh(namespace: string, credentialId: string, options: RefreshOptions): Promise<RefreshResult> {
      // A narrower token is its caller's own; it still takes the lease (the refresh token may rotate).
      if (options.narrowTo) return run(namespace, credentialId, options);
      const pending = inFlight.get(credentialId);
      if (pending) return pending;
      const started = run(namespace, credentialId, options).finally(() => inFlight.delete(credentialId));
      inFlight.set(credentialId, started);
      return started;
    },
  };
};

export type Refresher = ReturnType<typeof createRefresher>;
