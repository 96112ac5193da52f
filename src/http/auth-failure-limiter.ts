import type { Clock } from '../lib/clock.js';
import { hashToken } from '../lib/token-hash.js';

/**
 * How many times `limit` failures one address may have in a window, over all the identities it
 * presents, before every request from it waits.
 */
export const addressCeilingFactor = 10;

/**
 * Counts failed authentications over a sliding window, per client address and per (address,
 * presented identity). In memory, per replica: it slows guessing down, it is not the only defence
 * (tokens carry 256 random bits).
 *
 * Why two counts: one address is often many callers (a host running several agents, a NAT, the
 * local CLI beside a misconfigured script). A presented identity (a hash prefix of the token; never
 * the token) is refused once it has failed `limit` times itself, so ten wrong admin tokens, or one
 * revoked agent key retried in a loop, do not lock out the right token from the same address. The
 * address as a whole is refused only above a much higher ceiling (`limit × addressCeilingFactor`),
 * which still bounds a guesser who presents a new token each time.
 *
 * A success resets nothing: otherwise a guesser holding one valid token could interleave it with its
 * guesses and never be slowed.
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
  const addressCeiling = limit * addressCeilingFactor;

  const addressKey = (address: string) => `a ${address}`;
  /** 64 bits of the token's SHA-256: enough to tell identities apart, useless to recover one. */
  const identityKey = (address: string, presented: string | undefined) =>
    `i ${address} ${presented === undefined ? '-' : hashToken(presented).slice(0, 16)}`;

  const recent = (key: string, now: number) =>
    (failures.get(key) ?? []).filter((time) => now - time < windowMs);

  const wait = (times: number[], max: number, now: number): number =>
    times.length < max
      ? 0
      : Math.max(1, Math.ceil((windowMs - (now - (times[times.length - max] ?? now))) / 1000));

  /** Keeps the map in order of last failure, so that when it is full the stalest entry goes first. */
  const add = (key: string, max: number, now: number) => {
    const times = [...recent(key, now), now].slice(-max);
    failures.delete(key);
    if (failures.size >= maxTracked) failures.delete(failures.keys().next().value as string);
    failures.set(key, times);
  };

  return {
    /**
     * Seconds to wait before `presented` (the bearer token, or undefined when there is none) may be
     * tried again from `address`, otherwise 0.
     */
    retryAfterSeconds(address: string, presented: string | undefined): number {
      const now = clock.now().getTime();
      // Every failure is counted against its address too (and that entry is the newer of the two),
      // so an address with no recent failure has no failing token either: the usual request hashes
      // nothing here.
      const fromAddress = recent(addressKey(address), now);
      if (fromAddress.length === 0) return 0;
      return Math.max(
        wait(recent(identityKey(address, presented), now), limit, now),
        wait(fromAddress, addressCeiling, now),
      );
    },
    recordFailure(address: string, presented: string | undefined): void {
      const now = clock.now().getTime();
      add(identityKey(address, presented), limit, now);
      add(addressKey(address), addressCeiling, now);
    },
  };
};

export type AuthFailureLimiter = ReturnType<typeof createAuthFailureLimiter>;
