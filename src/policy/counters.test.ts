import { describe, expect, it } from 'vitest';
import { createMemoryCounters, windowOf, type CounterRequirement } from './counters.js';

const at = (iso: string) => new Date(iso);

describe('in-memory counters', () => {
  it('lets the N-th request through and refuses the N+1-th, until the fixed window resets', async () => {
    const counters = createMemoryCounters();
    const limit: CounterRequirement = { key: 'k', limit: 3, window: { kind: 'fixed', seconds: 60 } };
    const now = at('2026-11-27T10:00:10Z');
    const results = [];
    for (let i = 0; i < 4; i += 1) results.push((await counters.consume([limit], now))[0]);
    expect(results.map((result) => result?.allowed)).toEqual([true, true, true, false]);
    expect(results.map((result) => result?.remaining)).toEqual([2, 1, 0, 0]);
    expect(results[3]?.resetAt).toEqual(at('2026-11-27T10:01:00Z'));
    expect((await counters.consume([limit], at('2026-11-27T10:01:00Z')))[0]?.allowed).toBe(true);
  });

  it('is all-or-nothing: a request one counter refuses counts nothing on the others', async () => {
    const counters = createMemoryCounters();
    const roomy: CounterRequirement = { key: 'roomy', limit: 10, window: { kind: 'total' } };
    const tight: CounterRequirement = { key: 'tight', limit: 1, window: { kind: 'total' } };
    const now = at('2026-11-27T10:00:00Z');
    expect((await counters.consume([roomy, tight], now)).map((result) => result.allowed)).toEqual([
      true,
      true,
    ]);
    const refused = await counters.consume([roomy, tight], now);
    expect(refused.map((result) => result.allowed)).toEqual([true, false]);
    // The refused request did not count on `roomy`: 9 are still left before this one.
    expect((await counters.peek([roomy], now))[0]).toEqual({ allowed: true, remaining: 8, resetAt: null });
  });

  it('peek counts nothing', async () => {
    const counters = createMemoryCounters();
    const one: CounterRequirement = { key: 'one', limit: 1, window: { kind: 'total' } };
    const now = at('2026-11-27T10:00:00Z');
    for (let i = 0; i < 3; i += 1) expect((await counters.peek([one], now))[0]?.allowed).toBe(true);
    expect((await counters.consume([one], now))[0]?.allowed).toBe(true);
    expect((await counters.peek([one], now))[0]?.allowed).toBe(false);
  });

  it('a sliding window refuses the N+1-th within any interval and frees a slot as the oldest ages out', async () => {
    const counters = createMemoryCounters();
    const sliding: CounterRequirement = { key: 's', limit: 2, window: { kind: 'sliding', seconds: 60 } };
    expect((await counters.consume([sliding], at('2026-11-27T10:00:50Z')))[0]?.allowed).toBe(true);
    expect((await counters.consume([sliding], at('2026-11-27T10:01:10Z')))[0]?.allowed).toBe(true);
    // A fixed window would have reset at 10:01:00; the sliding one still holds both.
    const refused = (await counters.consume([sliding], at('2026-11-27T10:01:20Z')))[0];
    expect(refused?.allowed).toBe(false);
    expect(refused?.resetAt).toEqual(at('2026-11-27T10:01:50Z'));
    expect((await counters.consume([sliding], at('2026-11-27T10:01:50.001Z')))[0]?.allowed).toBe(true);
  });

  it('reset empties one key or all', async () => {
    const counters = createMemoryCounters();
    const one: CounterRequirement = { key: 'one', limit: 1, window: { kind: 'total' } };
    const now = at('2026-11-27T10:00:00Z');
    await counters.consume([one], now);
    counters.reset('one');
    expect((await counters.consume([one], now))[0]?.allowed).toBe(true);
  });
});

describe('counter windows', () => {
  it('a day starts at local midnight in the zone, across a DST change', () => {
    const berlinDay = { kind: 'calendar', per: 'day', timeZone: 'Europe/Berlin' } as const;
    // 23:30Z on 28 March is 00:30 CET on Sunday 29 March; that day is 23 hours long.
    expect(windowOf(berlinDay, at('2026-03-28T23:30:00Z'))).toEqual({
      bucket: '2026-3-29',
      resetAt: at('2026-03-29T22:00:00Z'),
    });
    expect(windowOf(berlinDay, at('2026-03-28T22:59:00Z')).bucket).toBe('2026-3-28');
  });

  it('a month starts on the 1st at local midnight', () => {
    const month = { kind: 'calendar', per: 'month', timeZone: 'America/New_York' } as const;
    expect(windowOf(month, at('2026-12-01T04:59:00Z'))).toEqual({
      bucket: '2026-11',
      resetAt: at('2026-12-01T05:00:00Z'),
    });
    expect(windowOf(month, at('2026-12-01T05:00:00Z')).bucket).toBe('2026-12');
    expect(windowOf(month, at('2026-12-15T00:00:00Z')).resetAt).toEqual(at('2027-01-01T05:00:00Z'));
  });

  it('a usage cap per day refuses the N+1-th use that day and allows it the next', async () => {
    const counters = createMemoryCounters();
    const perDay: CounterRequirement = {
      key: 'd',
      limit: 2,
      window: { kind: 'calendar', per: 'day', timeZone: 'UTC' },
    };
    for (const time of ['2026-11-27T00:00:00Z', '2026-11-27T23:00:00Z']) {
      expect((await counters.consume([perDay], at(time)))[0]?.allowed).toBe(true);
    }
    expect((await counters.consume([perDay], at('2026-11-27T23:59:59Z')))[0]?.allowed).toBe(false);
    expect((await counters.consume([perDay], at('2026-11-28T00:00:00Z')))[0]?.allowed).toBe(true);
  });
});
