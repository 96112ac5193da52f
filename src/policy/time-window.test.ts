import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { TimeWindowRule, Weekday } from './policy-types.js';
import { weekdays } from './policy-types.js';
import { parseClockTime, wallClock, withinTimeWindow } from './time-window.js';

const rule = (days: Weekday[], start: string, end: string, timeZone: string): TimeWindowRule => ({
  kind: 'time_window',
  days,
  start: parseClockTime(start, false)!,
  end: parseClockTime(end, true)!,
  timeZone,
});

const businessHours = rule(['mon', 'tue', 'wed', 'thu', 'fri'], '09:00', '18:00', 'Europe/Berlin');

describe('business hours in the policy’s zone, whatever the server’s zone', () => {
  const originalTz = process.env.TZ;
  afterEach(() => {
    process.env.TZ = originalTz;
  });

  for (const serverZone of ['Pacific/Auckland', 'America/Los_Angeles']) {
    it(`Friday 17:59 allowed, 18:00 refused, Saturday refused, with TZ=${serverZone}`, () => {
      process.env.TZ = serverZone;
      // Proof that the server zone really changed under this test: offsets differ from Berlin's.
      expect(new Date('2026-11-27T12:00:00Z').getTimezoneOffset()).not.toBe(-60);
      // Friday 27 November 2026, Berlin is UTC+1.
      expect(withinTimeWindow(businessHours, new Date('2026-11-27T16:59:00Z'))).toBe(true);
      expect(withinTimeWindow(businessHours, new Date('2026-11-27T16:59:59.999Z'))).toBe(true);
      expect(withinTimeWindow(businessHours, new Date('2026-11-27T17:00:00Z'))).toBe(false);
      expect(withinTimeWindow(businessHours, new Date('2026-11-28T10:00:00Z'))).toBe(false);
      expect(withinTimeWindow(businessHours, new Date('2026-11-27T08:00:00Z'))).toBe(true);
      expect(withinTimeWindow(businessHours, new Date('2026-11-27T07:59:00Z'))).toBe(false);
    });
  }
});

describe('daylight-saving changes', () => {
  const sundays = rule(['sun'], '09:00', '18:00', 'Europe/Berlin');

  it('Europe/Berlin spring forward (29 March 2026): 09:00 is 07:00Z after the change', () => {
    expect(withinTimeWindow(sundays, new Date('2026-03-29T06:59:00Z'))).toBe(false);
    expect(withinTimeWindow(sundays, new Date('2026-03-29T07:00:00Z'))).toBe(true);
    expect(withinTimeWindow(sundays, new Date('2026-03-29T15:59:00Z'))).toBe(true);
    expect(withinTimeWindow(sundays, new Date('2026-03-29T16:00:00Z'))).toBe(false);
  });

  it('Europe/Berlin fall back (25 October 2026): 09:00 is 08:00Z after the change', () => {
    expect(withinTimeWindow(sundays, new Date('2026-10-25T07:59:00Z'))).toBe(false);
    expect(withinTimeWindow(sundays, new Date('2026-10-25T08:00:00Z'))).toBe(true);
    expect(withinTimeWindow(sundays, new Date('2026-10-25T16:59:00Z'))).toBe(true);
    expect(withinTimeWindow(sundays, new Date('2026-10-25T17:00:00Z'))).toBe(false);
  });

  it('America/New_York: a window over the skipped and the repeated hour', () => {
    const night = rule(['sun'], '01:30', '03:00', 'America/New_York');
    // 8 March 2026: 02:00 EST jumps to 03:00 EDT. 01:59 EST is inside, the next minute is 03:00 EDT.
    expect(withinTimeWindow(night, new Date('2026-03-08T06:59:00Z'))).toBe(true);
    expect(withinTimeWindow(night, new Date('2026-03-08T07:00:00Z'))).toBe(false);
    // 1 November 2026: 01:00–02:00 happens twice (EDT, then EST); 01:30 is inside both times.
    expect(withinTimeWindow(night, new Date('2026-11-01T05:30:00Z'))).toBe(true);
    expect(withinTimeWindow(night, new Date('2026-11-01T06:30:00Z'))).toBe(true);
    // 02:59 EST is inside; 03:00 EST is the end.
    expect(withinTimeWindow(night, new Date('2026-11-01T07:59:00Z'))).toBe(true);
    expect(withinTimeWindow(night, new Date('2026-11-01T08:00:00Z'))).toBe(false);
    // Before the change, 01:29 EDT is outside.
    expect(withinTimeWindow(night, new Date('2026-11-01T05:29:00Z'))).toBe(false);
  });
});

describe('windows that cross midnight', () => {
  const fridayNight = rule(['fri'], '22:00', '02:00', 'UTC');

  it('a Friday 22:00–02:00 window covers Saturday 01:00 and not Friday 01:00', () => {
    expect(withinTimeWindow(fridayNight, new Date('2026-11-27T21:59:00Z'))).toBe(false);
    expect(withinTimeWindow(fridayNight, new Date('2026-11-27T22:00:00Z'))).toBe(true);
    expect(withinTimeWindow(fridayNight, new Date('2026-11-28T01:00:00Z'))).toBe(true);
    expect(withinTimeWindow(fridayNight, new Date('2026-11-28T01:59:00Z'))).toBe(true);
    expect(withinTimeWindow(fridayNight, new Date('2026-11-28T02:00:00Z'))).toBe(false);
    expect(withinTimeWindow(fridayNight, new Date('2026-11-27T01:00:00Z'))).toBe(false);
    expect(withinTimeWindow(fridayNight, new Date('2026-11-28T22:30:00Z'))).toBe(false);
  });

  it('a Sunday night window runs into Monday', () => {
    const sundayNight = rule(['sun'], '23:00', '01:00', 'Asia/Tokyo');
    expect(withinTimeWindow(sundayNight, new Date('2026-11-29T15:30:00Z'))).toBe(true); // Mon 00:30 JST
    expect(withinTimeWindow(sundayNight, new Date('2026-11-30T15:30:00Z'))).toBe(false); // Tue 00:30 JST
  });

  it('00:00–24:00 is the whole day', () => {
    const saturday = rule(['sat'], '00:00', '24:00', 'UTC');
    expect(withinTimeWindow(saturday, new Date('2026-11-28T00:00:00Z'))).toBe(true);
    expect(withinTimeWindow(saturday, new Date('2026-11-28T23:59:59Z'))).toBe(true);
    expect(withinTimeWindow(saturday, new Date('2026-11-29T00:00:00Z'))).toBe(false);
  });
});

describe('time windows, property-based', () => {
  const zones = ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'UTC'];
  const zone = fc.constantFrom(...zones);
  const instant = fc.date({
    min: new Date('2000-01-01T00:00:00Z'),
    max: new Date('2040-01-01T00:00:00Z'),
    noInvalidDate: true,
  });

  it('an instant is inside [start, end) on an allowed day, and outside a minute before start', () => {
    fc.assert(
      fc.property(instant, zone, fc.integer({ min: 1, max: 1439 }), (time, timeZone, length) => {
        const local = wallClock(time, timeZone);
        const start = local.minute;
        const end = Math.min(1440, start + length);
        fc.pre(end > start);
        const window: TimeWindowRule = { kind: 'time_window', days: [local.weekday], start, end, timeZone };
        expect(withinTimeWindow(window, time)).toBe(true);
        // The minute before start, read on the same wall clock, is refused unless a DST jump moved it.
        const before = new Date(time.getTime() - 60_000);
        const localBefore = wallClock(before, timeZone);
        if (localBefore.weekday === local.weekday && localBefore.minute === start - 1) {
          expect(withinTimeWindow(window, before)).toBe(false);
        }
      }),
    );
  });

  it('the end is exclusive: a window ending at an instant’s minute refuses it, one minute later allows it', () => {
    fc.assert(
      fc.property(instant, zone, fc.integer({ min: 1, max: 1439 }), (time, timeZone, length) => {
        const local = wallClock(time, timeZone);
        fc.pre(local.minute > 0);
        const start = Math.max(0, local.minute - length);
        const window = (end: number): TimeWindowRule => ({
          kind: 'time_window',
          days: [local.weekday],
          start,
          end,
          timeZone,
        });
        expect(withinTimeWindow(window(local.minute), time)).toBe(false);
        expect(withinTimeWindow(window(local.minute + 1), time)).toBe(true);
      }),
    );
  });

  it('a crossing window on any days: the evening of a listed day or the morning after it (Sunday into Monday too)', () => {
    const nextDay = (day: Weekday) => weekdays[(weekdays.indexOf(day) + 1) % 7] as Weekday;
    fc.assert(
      fc.property(
        instant,
        zone,
        fc.subarray([...weekdays], { minLength: 1 }),
        fc.integer({ min: 1, max: 1439 }),
        fc.integer({ min: 0, max: 1438 }),
        (time, timeZone, days, start, end) => {
          fc.pre(end < start);
          const local = wallClock(time, timeZone);
          const evening = days.includes(local.weekday) && local.minute >= start;
          const morning = days.some((day) => nextDay(day) === local.weekday) && local.minute < end;
          const crossing: TimeWindowRule = { kind: 'time_window', days, start, end, timeZone };
          expect(withinTimeWindow(crossing, time)).toBe(evening || morning);
        },
      ),
    );
  });

  it('a day not listed is refused for a window that does not cross midnight', () => {
    fc.assert(
      fc.property(instant, zone, (time, timeZone) => {
        const local = wallClock(time, timeZone);
        const days = weekdays.filter((day) => day !== local.weekday);
        expect(withinTimeWindow({ kind: 'time_window', days, start: 0, end: 1440, timeZone }, time)).toBe(
          false,
        );
      }),
    );
  });

  it('a crossing window equals its two halves: [start, 24:00) on the day, [00:00, end) the next day', () => {
    fc.assert(
      fc.property(
        instant,
        zone,
        fc.integer({ min: 1, max: 1439 }),
        fc.integer({ min: 1, max: 1439 }),
        (time, timeZone, a, b) => {
          const [end, start] = a < b ? [a, b] : [b, a];
          fc.pre(start > end);
          const days: Weekday[] = ['fri'];
          const crossing: TimeWindowRule = { kind: 'time_window', days, start, end, timeZone };
          const evening: TimeWindowRule = { kind: 'time_window', days, start, end: 1440, timeZone };
          const morning: TimeWindowRule = { kind: 'time_window', days: ['sat'], start: 0, end, timeZone };
          expect(withinTimeWindow(crossing, time)).toBe(
            withinTimeWindow(evening, time) || withinTimeWindow(morning, time),
          );
        },
      ),
    );
  });
});

describe('clock times', () => {
  it('reads HH:MM and 24:00 only as an end', () => {
    expect(parseClockTime('09:00', false)).toBe(540);
    expect(parseClockTime('23:59', false)).toBe(1439);
    expect(parseClockTime('24:00', true)).toBe(1440);
    expect(parseClockTime('24:00', false)).toBeUndefined();
    for (const bad of ['25:00', '9:00', '09:60', '24:01', '0900', ''])
      expect(parseClockTime(bad, true)).toBeUndefined();
  });
});
