import { describe, expect, it } from 'vitest';
import { fixedClock } from '../lib/clock.js';
import { addressCeilingFactor, createAuthFailureLimiter } from './auth-failure-limiter.js';

describe('auth failure limiter', () => {
  it('blocks an identity after `limit` failures within the window, and forgets them after it', () => {
    const clock = fixedClock('2026-01-01T00:00:00Z');
    const limiter = createAuthFailureLimiter({ limit: 2, clock, windowMs: 60_000 });
    limiter.recordFailure('10.0.0.1', 'wrong');
    expect(limiter.retryAfterSeconds('10.0.0.1', 'wrong')).toBe(0);
    clock.advance(10_000);
    limiter.recordFailure('10.0.0.1', 'wrong');
    expect(limiter.retryAfterSeconds('10.0.0.1', 'wrong')).toBe(50);
    expect(limiter.retryAfterSeconds('10.0.0.2', 'wrong')).toBe(0);
    clock.advance(50_000);
    expect(limiter.retryAfterSeconds('10.0.0.1', 'wrong')).toBe(0);
  });

  it("does not refuse another identity from the same address for one identity's failures", () => {
    const limiter = createAuthFailureLimiter({ limit: 10, clock: fixedClock('2026-01-01T00:00:00Z') });
    for (let i = 0; i < 10; i += 1) limiter.recordFailure('127.0.0.1', 'tv_admin_wrong');
    expect(limiter.retryAfterSeconds('127.0.0.1', 'tv_admin_wrong')).toBeGreaterThan(0);
    expect(limiter.retryAfterSeconds('127.0.0.1', 'tv_admin_right')).toBe(0);
  });

  it('still refuses every identity from an address above the per-address ceiling', () => {
    const limit = 3;
    const limiter = createAuthFailureLimiter({ limit, clock: fixedClock('2026-01-01T00:00:00Z') });
    for (let i = 0; i < limit * addressCeilingFactor - 1; i += 1)
      limiter.recordFailure('10.0.0.9', `guess-${i}`);
    expect(limiter.retryAfterSeconds('10.0.0.9', 'fresh')).toBe(0);
    limiter.recordFailure('10.0.0.9', 'one-more');
    expect(limiter.retryAfterSeconds('10.0.0.9', 'fresh')).toBeGreaterThan(0);
    expect(limiter.retryAfterSeconds('10.0.0.10', 'fresh')).toBe(0);
  });
});
