import { describe, expect, it } from 'vitest';
import { backoffMs, nextAttemptAt, retryAfterMs } from './delivery-schedule.js';

const policy = { baseMs: 1000, maxMs: 60_000 };

describe('event delivery schedule', () => {
  it('doubles the wait after each failure, jittered between half and all of it, and caps it', () => {
    expect([1, 2, 3, 4].map((n) => backoffMs(n, policy, () => 1))).toEqual([1000, 2000, 4000, 8000]);
    expect([1, 2, 3, 4].map((n) => backoffMs(n, policy, () => 0))).toEqual([500, 1000, 2000, 4000]);
    expect(backoffMs(40, policy, () => 1)).toBe(60_000);
  });

  it('reads Retry-After as seconds or as an HTTP date, and ignores what it cannot read', () => {
    const now = new Date('2026-11-27T10:00:00Z');
    expect(retryAfterMs('7', now)).toBe(7000);
    expect(retryAfterMs('Fri, 27 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Fri, 27 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs('-3', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });

  it('lets Retry-After win over the backoff, and gives up past the age limit', () => {
    const now = new Date('2026-11-27T10:00:00Z');
    const base = { now, createdAt: now, failures: 1, maxAgeMs: 600_000, policy, random: () => 1 };
    expect(nextAttemptAt({ ...base, retryAfterMs: undefined })).toEqual(new Date('2026-11-27T10:00:01Z'));
    expect(nextAttemptAt({ ...base, retryAfterMs: 20_000 })).toEqual(new Date('2026-11-27T10:00:20Z'));
    // A Retry-After longer than the cap waits the cap.
    expect(nextAttemptAt({ ...base, retryAfterMs: 3_600_000 })).toEqual(new Date('2026-11-27T10:01:00Z'));
    const old = { ...base, createdAt: new Date('2026-11-27T09:50:00Z') };
    expect(nextAttemptAt({ ...old, retryAfterMs: undefined })).toBeUndefined();
  });
});
