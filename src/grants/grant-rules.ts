import { validateScopes } from '../credentials/credential-types.js';
import type { ErrorCode } from '../errors/error-registry.js';
import { VaultError } from '../errors/vault-error.js';
import { formatDuration, parseDuration } from '../lib/duration.js';
import { type Grant, type GrantStatus, maxGrantTtlSeconds, minGrantTtlSeconds } from './grant-types.js';

/**
 * Pure grant rules: scope subsets, lifetimes, status, and which grant a use rests on. Plain values
 * in, plain values out. The decision a use gets (grant, credential, channel, policies) is
 * `decide()` in src/access/; "policy" there means the attribute-based rules, not these.
 */

const quoted = (values: readonly string[]) => values.map((v) => `"${v.slice(0, 80)}"`).join(', ');
const listOrNone = (values: readonly string[]) => (values.length === 0 ? 'none' : values.join(', '));

/** The requested scopes that `allowed` does not contain, in request order, without repeats. */
export const scopesOutside = (requested: readonly string[], allowed: readonly string[]): string[] => {
  const allowedSet = new Set(allowed);
  return [...new Set(requested)].filter((scope) => !allowedSet.has(scope));
};

/**
 * The scopes of a new grant. None asked for (undefined) gives all the credential's scopes; otherwise
 * they must be a subset of them, and the error names the extra ones.
 */
export const grantScopes = (
  requested: readonly string[] | undefined,
  credential: { name: string; scopes: readonly string[] },
): string[] => {
  if (requested === undefined) return [...credential.scopes];
  const scopes = validateScopes([...requested]);
  const extra = scopesOutside(scopes, credential.scopes);
  if (extra.length > 0) {
    throw new VaultError(
      'invalid_scope',
      `Credential "${credential.name}" has no scope ${quoted(extra)}; a grant can only give scopes the credential has: ${listOrNone(credential.scopes)}.`,
    );
  }
  return scopes;
};

const allowedRange = `from ${formatDuration(minGrantTtlSeconds)} to ${formatDuration(maxGrantTtlSeconds)}`;

/**
 * How long a new grant lasts: exactly one of a TTL (`1h` … `30d`, or whole seconds) or until revoked.
 * Returns the TTL in seconds, or null for until revoked.
 */
export const grantLifetime = (input: {
  ttl?: string | number | undefined;
  untilRevoked?: boolean | undefined;
}): number | null => {
  const hasTtl = input.ttl !== undefined;
  if (hasTtl && input.untilRevoked) {
    throw new VaultError('invalid_ttl', 'Give either a TTL or until-revoked, not both.');
  }
  if (input.untilRevoked) return null;
  if (!hasTtl) {
    throw new VaultError(
      'invalid_ttl',
      `Say how long the grant lasts: a TTL ${allowedRange} (for example 7d), or until revoked.`,
    );
  }
  const seconds = typeof input.ttl === 'number' ? input.ttl : parseDuration(input.ttl as string);
  if (seconds === undefined || !Number.isSafeInteger(seconds) || seconds <= 0) {
    throw new VaultError(
      'invalid_ttl',
      `"${String(input.ttl).slice(0, 40)}" is not a duration; give a TTL ${allowedRange} such as 1h, 12h, 7d or 30d.`,
    );
  }
  if (seconds < minGrantTtlSeconds || seconds > maxGrantTtlSeconds) {
    throw new VaultError(
      'invalid_ttl',
      `A grant TTL must be ${allowedRange}; ${formatDuration(seconds)} is too ${seconds < minGrantTtlSeconds ? 'short' : 'long'}. For a standing grant use until revoked.`,
    );
  }
  return seconds;
};

export const grantExpiresAt = (now: Date, ttlSeconds: number | null): string | null =>
  ttlSeconds === null ? null : new Date(now.getTime() + ttlSeconds * 1000).toISOString();

/** Past (or now) when set; null never is. */
export const isPast = (iso: string | null, now: Date) => iso !== null && Date.parse(iso) <= now.getTime();

export const grantStatus = (grant: Pick<Grant, 'revokedAt' | 'expiresAt'>, now: Date): GrantStatus => {
  if (grant.revokedAt !== null) return 'revoked';
  return isPast(grant.expiresAt, now) ? 'expired' : 'active';
};

/** The earliest of several optional expiry times (null: never). */
export const earliestExpiry = (...times: (string | null)[]): string | null => {
  const set = times.filter((t): t is string => t !== null);
  if (set.length === 0) return null;
  return new Date(Math.min(...set.map((t) => Date.parse(t)))).toISOString();
};

const maxRequestedScopes = 100;

/** `?scope=a,b`, `?scope=a&scope=b` or OAuth's space-separated `?scope=a b`: one list, no repeats. */
export const parseScopeQuery = (value: string | readonly string[] | undefined): string[] => {
  if (value === undefined) return [];
  const values = typeof value === 'string' ? [value] : value;
  const scopes = [...new Set(values.flatMap((v) => v.split(/[\s,]+/)).filter((s) => s.length > 0))];
  if (scopes.length > maxRequestedScopes || scopes.some((s) => s.length > 256)) {
    throw new VaultError(
      'invalid_request',
      `Ask for at most ${maxRequestedScopes} scopes of at most 256 characters each.`,
    );
  }
  return scopes;
};

export type GrantSelection =
  { selected: true; grant: Grant } | { selected: false; code: ErrorCode; message?: string; grant?: Grant };

const latestFirst = (a: Grant, b: Grant) =>
  b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id);
const expiresLater = (a: Grant, b: Grant) =>
  (b.expiresAt === null ? Infinity : Date.parse(b.expiresAt)) -
  (a.expiresAt === null ? Infinity : Date.parse(a.expiresAt));

/**
 * The grant a use rests on, out of all the agent's grants for the credential: a live one that covers
 * the requested scopes; a reveal grant before a proxy-only one, then the one that lasts longest. The
 * refusal says why none does: none at all, revoked or expired (by the newest), or the scopes.
 */
export const selectGrant = ({
  grants,
  requestedScopes,
  now,
}: {
  grants: readonly Grant[];
  requestedScopes: readonly string[];
  now: Date;
}): GrantSelection => {
  if (grants.length === 0) return { selected: false, code: 'credential_not_granted' };

  const live = grants.filter((g) => grantStatus(g, now) === 'active');
  if (live.length === 0) {
    const latest = [...grants].sort(latestFirst)[0] as Grant;
    return {
      selected: false,
      code: grantStatus(latest, now) === 'revoked' ? 'grant_revoked' : 'grant_expired',
      grant: latest,
    };
  }

  const covering = live.filter((g) => scopesOutside(requestedScopes, g.scopes).length === 0);
  if (covering.length === 0) {
    const granted = [...new Set(live.flatMap((g) => g.scopes))];
    return {
      selected: false,
      code: 'scope_not_granted',
      message: `The grant does not include scope ${quoted(scopesOutside(requestedScopes, granted))}; it gives ${listOrNone(granted)}.`,
      grant: live.sort(latestFirst)[0] as Grant,
    };
  }

  const chosen = [...covering].sort(
    (a, b) => Number(b.reveal) - Number(a.reveal) || expiresLater(a, b) || latestFirst(a, b),
  )[0] as Grant;
  return { selected: true, grant: chosen };
};
