import type { RefreshSettings } from './refresh-types.js';

/**
 * When to refresh next, as pure arithmetic over times in milliseconds (the refresher and the
 * scheduler do the I/O). `random` is injected so tests can pin the jitter.
 */

export interface PlanInput {
  now: number;
  /** When the current access token expires; null when it does not. */
  accessExpiresAt: number | null;
  /** When the current token was issued (its refresh, or its connection). */
  issuedAt: number;
  /** Whether there is a refresh token to use at all. */
  refreshable: boolean;
}

/**
 * The next scheduled refresh: `margin` (plus up to `jitter`, at random) before the access token
 * expires, and in any case within `idleRefresh` of the last one, so a refresh token nothing used does
 * not reach its provider's idle expiry. For a short-lived token the margin shrinks to a quarter of its
 * lifetime and the jitter to a tenth, so it is still used for most of its life. Null: never (no refresh
 * token).
 */
export const nextRefreshAt = (
  input: PlanInput,
  settings: Pick<RefreshSettings, 'marginMs' | 'jitterMs' | 'idleRefreshMs'>,
  random: () => number = Math.random,
): number | null => {
  if (!input.refreshable) return null;
  const idleDue = input.issuedAt + settings.idleRefreshMs - random() * settings.jitterMs;
  if (input.accessExpiresAt === null) return Math.max(input.now, idleDue);
  const lifetime = Math.max(0, input.accessExpiresAt - input.issuedAt);
  const margin = Math.min(settings.marginMs, lifetime / 4);
  const jitter = Math.min(settings.jitterMs, lifetime / 10);
  const expiryDue = input.accessExpiresAt - margin - random() * jitter;
  return Math.max(input.now, Math.min(expiryDue, idleDue));
};

/**
 * The wait before trying again after the `failures`-th retryable failure in a row: exponential from
 * `backoffBase`, capped at `backoffMax`, with "equal jitter" (half fixed, half random) so replicas
 * and credentials that failed together spread out, and never sooner than the provider's
 * `Retry-After`.
 */
export const backoffMs = (
  failures: number,
  retryAfterSeconds: number | undefined,
  settings: Pick<RefreshSettings, 'backoffBaseMs' | 'backoffMaxMs'>,
  random: () => number = Math.random,
): number => {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const ceiling = Math.min(settings.backoffMaxMs, settings.backoffBaseMs * 2 ** exponent);
  const jittered = ceiling / 2 + (random() * ceiling) / 2;
  return Math.max(jittered, (retryAfterSeconds ?? 0) * 1000);
};

/** Whether a retrieval must refresh before answering: expired, or less than `onDemand` left. */
export const needsRefreshNow = (now: number, accessExpiresAt: number | null, onDemandMs: number): boolean =>
  accessExpiresAt !== null && accessExpiresAt - now <= onDemandMs;
