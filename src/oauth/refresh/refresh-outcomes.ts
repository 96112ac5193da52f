import type { Kysely, Transaction } from 'kysely';
import type { AuditRecorder } from '../../audit/audit-types.js';
import type { CredentialService } from '../../credentials/credential-service.js';
import type { EventPublisher } from '../../events/event-types.js';
import type { Clock } from '../../lib/clock.js';
import type { Database } from '../../store/schema.js';
import type { TokenFailure, TokenSet } from '../token-set.js';
import { backoffMs } from './refresh-plan.js';
import { refreshStateRepo, type StatePatch } from './refresh-state-repo.js';
import type { RefreshResult, RefreshSettings } from './refresh-types.js';
import type { RefresherLogger, RefreshOptions } from './refresher.js';

/**
 * What a refresh that holds the lease (`fence`) writes when the provider has answered, each in one
 * transaction that checks the fence first: a refusal (`needs_reauth`, announced once) or a failure to
 * try again later (backoff), a narrower token (only a rotated refresh token is stored), and the audit
 * record of each. The refresher (refresher.ts) takes the lease and writes a full refresh itself.
 */

export interface RefreshOutcomesDeps {
  db: Kysely<Database>;
  credentials: Pick<CredentialService, 'openForRefresh'>;
  audit: Pick<AuditRecorder, 'recordInTransaction'>;
  events: EventPublisher;
  clock: Clock;
  settings: RefreshSettings;
  random: () => number;
  logger: RefresherLogger;
}

/** Writes a new secret version in the caller's transaction (credential-service `openForRefresh`). */
export type WriteSecret = (
  trx: Transaction<Database>,
  next: Record<string, string>,
  now: string,
) => Promise<number>;

const iso = (ms: number) => new Date(ms).toISOString();

export const createRefreshOutcomes = (deps: RefreshOutcomesDeps) => {
  const { db, credentials, audit, events, clock, settings, random, logger } = deps;
  const now = () => clock.now().getTime();

  const recordRefresh = (
    trx: Transaction<Database>,
    namespace: string,
    name: string,
    decision: { ok: true } | { ok: false; reason: string },
    details: Record<string, string | number | boolean>,
  ) =>
    audit.recordInTransaction(trx, {
      namespace,
      actor: { type: 'system', id: null },
      action: 'credential.refresh',
      target: { type: 'credential', id: name },
      decision: decision.ok ? 'allow' : 'deny',
      reason: decision.ok ? 'ok' : decision.reason,
      details: { credential_name: name, ...details },
    });

  /**
   * The credential waits for a person from now on: flipped to `needs_reauth`, recorded and announced
   * (`credential.needs_reauth`) in the caller's transaction, once — only the refresh that moves it
   * from active does. True when this call announced it.
   */
  const announceReauth = async (
    trx: Transaction<Database>,
    namespace: string,
    credentialId: string,
    name: string,
    failure: TokenFailure,
    options: RefreshOptions,
  ): Promise<boolean> => {
    const at = iso(now());
    const changed = await trx
      .updateTable('credentials')
      .set({ status: 'needs_reauth', updated_at: at })
      .where('id', '=', credentialId)
      .where('status', '=', 'active')
      .executeTakeFirst();
    if (Number(changed.numUpdatedRows) !== 1) return false;
    await recordRefresh(
      trx,
      namespace,
      name,
      { ok: false, reason: 'credential_needs_reauth' },
      {
        credential_id: credentialId,
        provider_error: failure.code,
        status: failure.status,
        trigger: options.trigger,
      },
    );
    await events.publish(
      {
        type: 'credential.needs_reauth',
        namespace,
        data: { credential_id: credentialId, credential_name: name, error: failure.code },
      },
      trx,
    );
    return true;
  };

  /** How long to wait after the `failures`-th failure in a row: backoff, or the longest for a fatal one. */
  const waitAfter = (failure: TokenFailure, failures: number) =>
    failure.kind === 'fatal'
      ? settings.backoffMaxMs
      : backoffMs(failures, failure.retryAfterSeconds, settings, random);

  /** A narrower token: handed to the caller; only a rotated refresh token is stored. */
  const narrowed = async (
    namespace: string,
    credentialId: string,
    name: string,
    fence: number,
    secret: Record<string, string>,
    token: TokenSet,
    write: WriteSecret,
    options: RefreshOptions,
  ): Promise<RefreshResult> => {
    const at = now();
    const rotated = token.refreshToken !== undefined && token.refreshToken !== secret.refresh_token;
    const version = await db.transaction().execute(async (trx) => {
      const held = await refreshStateRepo.finish(trx, credentialId, fence, {}, iso(at));
      if (!held) return undefined;
      const current = await trx
        .selectFrom('credentials')
        .select('current_version')
        .where('id', '=', credentialId)
        .executeTakeFirstOrThrow();
      if (!rotated) return Number(current.current_version);
      const next = await write(trx, { ...secret, refresh_token: token.refreshToken as string }, iso(at));
      // Same access token, same expiry: the state describes the new version as it did the old.
      await trx
        .updateTable('oauth_refresh_state')
        .set({ secret_version: next })
        .where('credential_id', '=', credentialId)
        .execute();
      await recordRefresh(
        trx,
        namespace,
        name,
        { ok: true },
        { credential_id: credentialId, version: next, trigger: options.trigger, rotated, narrowed: true },
      );
      return next;
    });
    if (version === undefined)
      return { outcome: 'retry_later', code: 'lease_lost', nextRefreshAt: iso(now()) };
    options.narrowTo?.onNarrowed({
      accessToken: token.accessToken,
      tokenType: token.tokenType,
      expiresAt: token.expiresAt ? Date.parse(token.expiresAt) : null,
      version,
    });
    return { outcome: 'refreshed', version };
  };

  const failed = async (
    namespace: string,
    credentialId: string,
    name: string,
    version: number,
    fence: number,
    failure: TokenFailure,
    options: RefreshOptions,
  ): Promise<RefreshResult> => {
    const at = now();
    const finish = (patch: StatePatch) => refreshStateRepo.finish(db, credentialId, fence, patch, iso(at));
    if (failure.kind === 'reauth_required') {
      // Before calling the grant gone: was the token changed under us (a reconnect, a takeover)?
      const reread = await credentials.openForRefresh(namespace, credentialId);
      if (reread && reread.version !== version) {
        await finish({ next_refresh_at: iso(at) });
        return { outcome: 'refreshed_elsewhere', version: reread.version };
      }
      const flipped = await db.transaction().execute(async (trx) => {
        const held = await refreshStateRepo.finish(
          trx,
          credentialId,
          fence,
          { status: 'needs_reauth', next_refresh_at: null, last_error: failure.code, failures: 0 },
          iso(at),
        );
        return held && announceReauth(trx, namespace, credentialId, name, failure, options);
      });
      logger.warn(
        { credentialId, code: failure.code, announced: flipped },
        'oauth refresh: grant refused, needs reauthorization',
      );
      return { outcome: 'needs_reauth', code: failure.code };
    }
    const row = await refreshStateRepo.get(db, credentialId);
    const failures = Number(row?.failures ?? 0) + 1;
    const next = iso(at + waitAfter(failure, failures));
    await finish({ status: 'failing', failures, last_error: failure.code, next_refresh_at: next });
    logger.warn(
      { credentialId, code: failure.code, kind: failure.kind, httpStatus: failure.status, failures, next },
      'oauth refresh failed; will try again',
    );
    return { outcome: 'retry_later', code: failure.code, nextRefreshAt: next };
  };

  return { recordRefresh, announceReauth, waitAfter, narrowed, failed };
};

export type RefreshOutcomes = ReturnType<typeof createRefreshOutcomes>;
