import { describe, expect, it } from 'vitest';
import { fixedClock } from '../lib/clock.js';
import { createAuthFailureLimiter } from './auth-failure-limiter.js';

describe('auth failure limiter', () => {
  it('blocks an address after `limit` failures within the window, and forgets them after it', () => {
    const clock = fixedClock('2026-01-01T00:00:00Z');
    const limiter = createAuthFailureLimiter({ limit: 2, clock, windowMs: 60_000 });
    limiter.recordFailure('10.0.0.1');
    expect(limiter.retryAfterSeconds('10.0.0.1')).toBe(0);
    clock.advance(10_000);
    limiter.recordFailure('10.0.0.1');
    expect(limiter.retryAfterSeconds('10.0.0.1')).toBe(50);
    expect(limiter.retryAfterSeconds('10.0.0.2')).toBe(0);
    clock.advance(50_000);
    expect(limiter.retryAfterSeconds('10.0.0.1')).toBe(0);
  });

  it('clears an address on success', () => {
    const limiter = createAuthFailureLimiter({ limit: 1, clock: fixedClock('2026-01-01T00:00:00Z') });
    limiter.recordFailure('a');
    expect(limiter.retryAfterSeconds('a')).toBeGreaterThan(0);
    limiter.recordSuccess('a');
    expect(limiter.retryAfterSeconds('a')).toBe(0);
  });
});
