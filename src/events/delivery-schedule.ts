/**
 * When to try an event again (pure). Exponential backoff with jitter, so that many events failing at
 * once against a receiver that is down do not all come back at the same instant; a `Retry-After` the
 * receiver sent wins over the backoff, because it knows its own load better than we do.
 */

export interface RetryPolicy {
  /** The first retry's delay before jitter. */
  baseMs: number;
  /** No wait is longer than this, `Retry-After` included. */
  maxMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { baseMs: 5_000, maxMs: 3_600_000 };

/**
 * The wait before attempt `failures + 1`, after `failures` failed ones: `base · 2^(failures-1)`,
 * capped, then "equal jitter" (between half of it and all of it), so the spread grows with the wait
 * but a retry never comes much sooner than the schedule says.
 */
export const backoffMs = (failures: number, policy: RetryPolicy, random: () => number): number => {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const capped = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(capped / 2 + random() * (capped / 2));
};

/**
 * A `Retry-After` header as milliseconds from `now`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Undefined when absent or unreadable; a date in the past is 0.
 */
export const retryAfterMs = (header: string | null | undefined, now: Date): number | undefined => {
  if (header === null || header === undefined) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date) || !/[a-z]/i.test(text)) return undefined;
  return Math.max(0, date - now.getTime());
};

/** The next attempt's time after a failure, or `undefined` when the event is too old to try again. */
export const nextAttemptAt = (input: {
  now: Date;
  createdAt: Date;
  failures: number;
  retryAfterMs: number | undefined;
  maxAgeMs: number;
  policy: RetryPolicy;
  random: () => number;
}): Date | undefined => {
  const wait = Math.min(
    input.policy.maxMs,
    input.retryAfterMs ?? backoffMs(input.failures, input.policy, input.random),
  );
  const at = input.now.getTime() + wait;
  // Past the age limit there is no next attempt: give up now rather than wait to find out.
  if (at - input.createdAt.getTime() > input.maxAgeMs) return undefined;
  return new Date(at);
};
