import { describe, expect, it } from 'vitest';
import { loadProviderCatalog } from '../provider-catalog.js';
import { backoffMs, needsRefreshNow, nextRefreshAt } from './refresh-plan.js';
import { refreshDefaults } from './refresh-types.js';

const hour = 3_600_000;
const day = 24 * hour;
const none = () => 0;
const all = () => 0.999_999;

describe('refresh plan', () => {
  it('refreshes a margin (and up to the jitter) before expiry', () => {
    const input = { now: 0, issuedAt: 0, accessExpiresAt: hour, refreshable: true };
    expect(nextRefreshAt(input, refreshDefaults, none)).toBe(hour - refreshDefaults.marginMs);
    expect(nextRefreshAt(input, refreshDefaults, all)).toBeCloseTo(
      hour - refreshDefaults.marginMs - refreshDefaults.jitterMs,
      -1,
    );
  });

  it('shrinks the margin for short-lived tokens, so they are used for most of their life', () => {
    const input = { now: 0, issuedAt: 0, accessExpiresAt: 60_000, refreshable: true };
    expect(nextRefreshAt(input, refreshDefaults, none)).toBe(45_000);
  });

  it('refreshes idle credentials well before the shortest idle expiry in the catalog', () => {
    const input = { now: 0, issuedAt: 0, accessExpiresAt: null, refreshable: true };
    expect(nextRefreshAt(input, refreshDefaults, none)).toBe(refreshDefaults.idleRefreshMs);
    const idleDays = loadProviderCatalog()
      .list()
      .map((entry) => entry.refresh.idleExpiryDays)
      .filter((days): days is number => days !== undefined);
    expect(refreshDefaults.idleRefreshMs).toBeLessThan(Math.min(...idleDays) * day);
  });

  it('never schedules without a refresh token, and never in the past', () => {
    expect(
      nextRefreshAt({ now: 0, issuedAt: 0, accessExpiresAt: hour, refreshable: false }, refreshDefaults),
    ).toBeNull();
    expect(
      nextRefreshAt(
        { now: 2 * hour, issuedAt: 0, accessExpiresAt: hour, refreshable: true },
        refreshDefaults,
      ),
    ).toBe(2 * hour);
  });

  it('backs off exponentially with jitter, capped, never sooner than Retry-After', () => {
    expect(backoffMs(1, undefined, refreshDefaults, all)).toBeCloseTo(refreshDefaults.backoffBaseMs, -1);
    expect(backoffMs(1, undefined, refreshDefaults, none)).toBe(refreshDefaults.backoffBaseMs / 2);
    expect(backoffMs(3, undefined, refreshDefaults, all)).toBeCloseTo(4 * refreshDefaults.backoffBaseMs, -1);
    expect(backoffMs(40, undefined, refreshDefaults, all)).toBeCloseTo(refreshDefaults.backoffMaxMs, -1);
    expect(backoffMs(1, 600, refreshDefaults, none)).toBe(600_000);
  });

  it('refreshes on demand only when expired or nearly so', () => {
    expect(needsRefreshNow(0, 60_000, 30_000)).toBe(false);
    expect(needsRefreshNow(31_000, 60_000, 30_000)).toBe(true);
    expect(needsRefreshNow(0, null, 30_000)).toBe(false);
  });
});
