import { beforeEach, expect, it } from 'vitest';
import type { CounterRequirement, CountersPort } from '../../src/policy/counters.js';

const at = (iso: string) => new Date(iso);

/**
 * The `CountersPort` contract (src/policy/counters.ts), run on every implementation: the memory
 * counters and the store's on SQLite and PostgreSQL. `make` gives fresh, empty counters.
 */
export const countersContract = (make: () => Promise<CountersPort>): void => {
  let counters: CountersPort;
  beforeEach(async () => {
    counters = await make();
  });

  const allowed = async (requirements: CounterRequirement[], time: string) =>
    (await counters.consume(requirements, at(time))).map((result) => result.allowed);

  it('lets the N-th request through and refuses the N+1-th, until the fixed window ends', async () => {
    const limit: CounterRequirement = { key: 'p:r:a', limit: 3, window: { kind: 'fixed', seconds: 60 } };
    const results = [];
    for (let i = 0; i < 4; i += 1)
      results.push((await counters.consume([limit], at('2026-11-27T10:00:10Z')))[0]);
    expect(results.map((result) => result?.allowed)).toEqual([true, true, true, false]);
    expect(results.map((result) => result?.remaining)).toEqual([2, 1, 0, 0]);
    expect(results[3]?.resetAt).toEqual(at('2026-11-27T10:01:00Z'));
    expect(await allowed([limit], '2026-11-27T10:00:59.999Z')).toEqual([false]);
    expect(await allowed([limit], '2026-11-27T10:01:00Z')).toEqual([true]);
  });

  it('is all-or-nothing: a request one counter refuses counts nothing on the others', async () => {
    const roomy: CounterRequirement = { key: 'roomy', limit: 10, window: { kind: 'total' } };
    const tight: CounterRequirement = { key: 'tight', limit: 1, window: { kind: 'total' } };
    const now = '2026-11-27T10:00:00Z';
    expect(await allowed([roomy, tight], now)).toEqual([true, true]);
    const refused = await counters.consume([tight, roomy], at(now));
    expect(refused.map((result) => result.allowed)).toEqual([false, true]);
    expect((await counters.peek([roomy], at(now)))[0]).toEqual({
      allowed: true,
      remaining: 8,
      resetAt: null,
    });
  });

  it('peek counts nothing', async () => {
    const one: CounterRequirement = { key: 'one', limit: 1, window: { kind: 'total' } };
    const now = at('2026-11-27T10:00:00Z');
    for (let i = 0; i < 3; i += 1) expect((await counters.peek([one], now))[0]?.allowed).toBe(true);
    expect((await counters.consume([one], now))[0]?.allowed).toBe(true);
    expect((await counters.peek([one], now))[0]).toEqual({ allowed: false, remaining: 0, resetAt: null });
  });

  it('a sliding window refuses the N+1-th within any interval and frees a slot as the oldest ages out', async () => {
    const sliding: CounterRequirement = { key: 's', limit: 2, window: { kind: 'sliding', seconds: 60 } };
    expect(await allowed([sliding], '2026-11-27T10:00:50Z')).toEqual([true]);
    expect(await allowed([sliding], '2026-11-27T10:01:10Z')).toEqual([true]);
    const refused = (await counters.consume([sliding], at('2026-11-27T10:01:20Z')))[0];
    expect(refused?.allowed).toBe(false);
    expect(refused?.resetAt).toEqual(at('2026-11-27T10:01:50Z'));
    expect(await allowed([sliding], '2026-11-27T10:01:49.999Z')).toEqual([false]);
    expect(await allowed([sliding], '2026-11-27T10:01:50Z')).toEqual([true]);
  });

  it('a usage cap per day counts in the zone’s day and starts again at its midnight', async () => {
    const perDay: CounterRequirement = {
      key: 'cap',
      limit: 2,
      window: { kind: 'calendar', per: 'day', timeZone: 'Europe/Berlin' },
    };
    // 23:30Z on 27 November is already 28 November in Berlin.
    expect(await allowed([perDay], '2026-11-27T00:00:00Z')).toEqual([true]);
    expect(await allowed([perDay], '2026-11-27T22:59:59Z')).toEqual([true]);
    expect(await allowed([perDay], '2026-11-27T22:59:59.500Z')).toEqual([false]);
    expect(await allowed([perDay], '2026-11-27T23:00:00Z')).toEqual([true]);
  });

  it('usage shows what is used and left per key under a prefix, and reset forgets only that prefix', async () => {
    const now = at('2026-11-27T10:00:10Z');
    const a: CounterRequirement = {
      key: 'policy:p1:rate:agent-a',
      limit: 5,
      window: { kind: 'fixed', seconds: 60 },
    };
    const b: CounterRequirement = { key: 'policy:p1:cap:agent-a', limit: 100, window: { kind: 'total' } };
    const other: CounterRequirement = { key: 'policy:p2:cap:agent-a', limit: 1, window: { kind: 'total' } };
    await counters.consume([a, b], now);
    await counters.consume([a, b, other], now);
    expect(await counters.usage('policy:p1:', now)).toEqual([
      { key: b.key, window: b.window, limit: 100, used: 2, remaining: 98, resetAt: null },
      { key: a.key, window: a.window, limit: 5, used: 2, remaining: 3, resetAt: at('2026-11-27T10:01:00Z') },
    ]);
    // In the next window the rate limit's count is back to nothing.
    expect((await counters.usage('policy:p1:rate', at('2026-11-27T10:01:10Z')))[0]).toMatchObject({
      used: 0,
      remaining: 5,
    });
    await counters.reset('policy:p1:');
    expect(await counters.usage('policy:p1:', now)).toEqual([]);
    expect(await allowed([b], '2026-11-27T10:00:10Z')).toEqual([true]);
    expect(await allowed([other], '2026-11-27T10:00:10Z')).toEqual([false]);
    expect((await counters.usage('', now)).map((line) => line.key)).toEqual([b.key, other.key]);
  });

  it('counts the same key twice in one request as two uses', async () => {
    const two: CounterRequirement = { key: 'twice', limit: 1, window: { kind: 'total' } };
    const results = await counters.consume([two, two], at('2026-11-27T10:00:00Z'));
    expect(results.map((result) => result.allowed)).toEqual([true, false]);
    expect(await allowed([two], '2026-11-27T10:00:00Z')).toEqual([true]);
  });
};
