import type { Clock } from '../lib/clock.js';

/**
 * Counts failed authentications per client address over a sliding minute. In memory, per replica:
 * it slows guessing down, it is not the only defence (tokens carry 256 random bits).
 */
export const createAuthFailureLimiter = ({
  limit,
  clock,
  windowMs = 60_000,
}: {
  limit: number;
  clock: Clock;
  windowMs?: number;
}) => {
  const failures = new Map<string, number[]>();
  const maxTracked = 100_000;

  const recent = (address: string, now: number) =>
    (failures.get(address) ?? []).filter((time) => now - time < windowMs);

  return {
    /** Seconds to wait when the address is over its limit, otherwise 0. */
    retryAfterSeconds(address: string): number {
      const now = clock.now().getTime();
      const times = recent(address, now);
      if (times.length < limit) return 0;
      return Math.max(1, Math.ceil((windowMs - (now - (times[0] ?? now))) / 1000));
    },
    recordFailure(address: string): void {
      const now = clock.now().getTime();
      if (failures.size >= maxTracked && !failures.has(address))
        failures.delete(failures.keys().next().value as string);
      failures.set(address, [...recent(address, now), now].slice(-limit));
    },
    recordSuccess(address: string): void {
      failures.delete(address);
    },
  };
};

export type AuthFailureLimiter = ReturnType<typeof createAuthFailureLimiter>;
