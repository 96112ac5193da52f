import { wallClock } from './time-window.js';

/** Fixed windows are aligned to the Unix epoch; calendar windows to local midnight in `timeZone`. */
export type CounterWindow =
  | { kind: 'fixed' | 'sliding'; seconds: number }
  | { kind: 'calendar'; per: 'day' | 'month'; timeZone: string }
  | { kind: 'total' };

export interface CounterRequirement {
  /** Who is counted: the policy, the rule and the scope (agent × credential, or the attachment). */
  key: string;
  window: CounterWindow;
  limit: number;
}

export interface CounterResult {
  allowed: boolean;
  /** What is left after this request (after it would be counted, for `peek`). */
  remaining: number;
  /** When the window that refused or counted this request ends; null for `total`. */
  resetAt: Date | null;
}

/**
 * Counters for rate limits and usage caps. The contract a store implementation must meet (the
 * in-memory one below meets it for one process):
 * - `consume` is all-or-nothing: either every requirement has room and each is counted once, or none
 *   is counted and the results say which refused. Several replicas calling it at once never let more
 *   than `limit` through a window between them (in SQL: one transaction that locks the counter rows
 *   in key order, checks every one, then increments every one).
 * - `peek` answers the same question without counting anything (dry runs, and deciding whether a
 *   request is worth asking a person to approve).
 * - Results come back in the order of the requirements.
 */
export interface CountersPort {
  consume(requirements: readonly CounterRequirement[], at: Date): Promise<CounterResult[]>;
  peek(requirements: readonly CounterRequirement[], at: Date): Promise<CounterResult[]>;
  /**
   * `policy usage`: every counted key starting with `keyPrefix`, with its window and limit as last
   * counted, what is used and left in the window `at` falls in, and when that window ends. Keys never
   * counted are not listed (all of their limit is left). Sorted by key.
   */
  usage(keyPrefix: string, at: Date): Promise<CounterUsage[]>;
  /** The admin reset: forgets every count of every key starting with `keyPrefix` (`''`: all). */
  reset(keyPrefix: string): Promise<void>;
}

export interface CounterUsage {
  key: string;
  window: CounterWindow;
  limit: number;
  used: number;
  remaining: number;
  /** When the current window ends (for a sliding one: when its oldest counted use ages out); null for `total`. */
  resetAt: Date | null;
}

const dayStart = (year: number, month: number, day: number, timeZone: string): Date => {
  // Local midnight as an instant: start from the UTC reading and correct by the zone's offset then;
  // twice, because the offset at the first guess may differ from the offset at midnight.
  let guess = Date.UTC(year, month - 1, day);
  for (let pass = 0; pass < 2; pass += 1) {
    const local = wallClock(new Date(guess), timeZone);
    const localAsUtc = Date.UTC(local.year, local.month - 1, local.day) + local.minute * 60_000;
    guess -= localAsUtc - Date.UTC(year, month - 1, day);
  }
  return new Date(guess);
};

/** The window an instant falls in: a bucket id for fixed and calendar windows, with its end. */
export const windowOf = (window: CounterWindow, at: Date): { bucket: string; resetAt: Date | null } => {
  switch (window.kind) {
    case 'total':
      return { bucket: 'total', resetAt: null };
    case 'fixed':
    case 'sliding': {
      const size = window.seconds * 1000;
      const start = Math.floor(at.getTime() / size) * size;
      return { bucket: String(start), resetAt: new Date(start + size) };
    }
    case 'calendar': {
      const local = wallClock(at, window.timeZone);
      if (window.per === 'day') {
        const next = new Date(Date.UTC(local.year, local.month - 1, local.day + 1));
        return {
          bucket: `${local.year}-${local.month}-${local.day}`,
          resetAt: dayStart(
            next.getUTCFullYear(),
            next.getUTCMonth() + 1,
            next.getUTCDate(),
            window.timeZone,
          ),
        };
      }
      const next = new Date(Date.UTC(local.year, local.month, 1));
      return {
        bucket: `${local.year}-${local.month}`,
        resetAt: dayStart(next.getUTCFullYear(), next.getUTCMonth() + 1, 1, window.timeZone),
      };
    }
  }
};

/**
 * Counters in one process's memory: exact for a single process, lost on restart. A sliding window
 * keeps the instants of the requests it counted and lets a request through when fewer than `limit`
 * fall in the last `seconds`; the others keep one count per bucket.
 */
export const createMemoryCounters = (): CountersPort => {
  const buckets = new Map<string, { bucket: string; count: number }>();
  const logs = new Map<string, number[]>();
  // The window and limit each key was last counted against, for `usage`.
  const counted = new Map<string, { window: CounterWindow; limit: number }>();

  /** What the key's window holds at `at`, and when it frees up (a sliding one: its oldest use ages out). */
  const measure = (requirement: CounterRequirement, at: Date): { used: number; resetAt: Date | null } => {
    const { window, key, limit } = requirement;
    if (window.kind === 'sliding') {
      const since = at.getTime() - window.seconds * 1000;
      const log = (logs.get(key) ?? []).filter((instant) => instant > since);
      logs.set(key, log);
      const oldest = log[0];
      const resetAt = new Date(
        (log.length >= limit && oldest !== undefined ? oldest : at.getTime()) + window.seconds * 1000,
      );
      return { used: log.length, resetAt };
    }
    const { bucket, resetAt } = windowOf(window, at);
    const current = buckets.get(key);
    return { used: current?.bucket === bucket ? current.count : 0, resetAt };
  };

  const check = (requirement: CounterRequirement, at: Date): CounterResult => {
    const { used, resetAt } = measure(requirement, at);
    return resultOf(requirement.limit, used, resetAt);
  };

  const count = (requirement: CounterRequirement, at: Date) => {
    const { window, key, limit } = requirement;
    counted.set(key, { window, limit });
    if (window.kind === 'sliding') {
      logs.get(key)?.push(at.getTime());
      return;
    }
    const { bucket } = windowOf(window, at);
    const current = buckets.get(key);
    buckets.set(key, { bucket, count: current?.bucket === bucket ? current.count + 1 : 1 });
  };

  return {
    // Synchronous inside the promise, so no other consume interleaves between the check and the count.
    consume(requirements, at) {
      // The same key twice in one request: the second sees the first as counted.
      const seen = new Map<string, number>();
      const results = requirements.map((requirement) => {
        const earlier = seen.get(requirement.key) ?? 0;
        seen.set(requirement.key, earlier + 1);
        const { used, resetAt } = measure(requirement, at);
        return resultOf(requirement.limit, used + earlier, resetAt);
      });
      if (results.every((result) => result.allowed)) {
        for (const requirement of requirements) count(requirement, at);
      }
      return Promise.resolve(results);
    },
    peek(requirements, at) {
      return Promise.resolve(requirements.map((requirement) => check(requirement, at)));
    },
    usage(keyPrefix, at) {
      const keys = [...counted.keys()].filter((key) => key.startsWith(keyPrefix)).sort();
      return Promise.resolve(
        keys.map((key) => {
          const { window, limit } = counted.get(key)!;
          const { used, resetAt } = measure({ key, window, limit }, at);
          return usageOf(key, window, limit, used, resetAt);
        }),
      );
    },
    reset(keyPrefix) {
      for (const map of [buckets, logs, counted]) {
        for (const key of [...map.keys()]) if (key.startsWith(keyPrefix)) map.delete(key);
      }
      return Promise.resolve();
    },
  };
};

/** The answer for one more request when `used` are counted already: the same in every implementation. */
export const resultOf = (limit: number, used: number, resetAt: Date | null): CounterResult => ({
  allowed: used < limit,
  remaining: Math.max(0, limit - used - 1),
  resetAt,
});

/** One `usage` line, the same in every implementation. */
export const usageOf = (
  key: string,
  window: CounterWindow,
  limit: number,
  used: number,
  resetAt: Date | null,
): CounterUsage => ({ key, window, limit, used, remaining: Math.max(0, limit - used), resetAt });
