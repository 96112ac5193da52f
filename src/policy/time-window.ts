import type { TimeWindowRule, Weekday } from './policy-types.js';
import { weekdays } from './policy-types.js';

/**
 * Wall-clock time in a zone, read with `Intl` so the answer follows the zone's rules (DST included)
 * whatever the server's own `TZ` is. A formatter per zone is cached: building one costs far more than
 * using it, and the set of zones in use is small.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();

const formatterFor = (timeZone: string): Intl.DateTimeFormat => {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
};

export interface WallClock {
  weekday: Weekday;
  year: number;
  month: number;
  day: number;
  /** Minutes after local midnight, 0..1439. */
  minute: number;
}

/**
 * The last reading per zone, by UTC minute: every request of a minute reads the same local minute, so
 * a busy window asks `Intl` once a minute rather than once a request. Only from 1980 on: since then
 * every zone's offset is whole minutes, so a UTC minute is exactly one local minute (before, some
 * offsets had seconds, such as Monrovia's −0:44:30 until 1972).
 */
const lastReading = new Map<string, { utcMinute: number; clock: WallClock }>();
const wholeMinuteOffsetsSince = Date.UTC(1980, 0, 1);

export const wallClock = (time: Date, timeZone: string): WallClock => {
  const at = time.getTime();
  if (at < wholeMinuteOffsetsSince) return readWallClock(time, timeZone);
  const utcMinute = Math.floor(at / 60_000);
  const last = lastReading.get(timeZone);
  if (last?.utcMinute === utcMinute) return last.clock;
  const clock = readWallClock(time, timeZone);
  lastReading.set(timeZone, { utcMinute, clock });
  return clock;
};

const readWallClock = (time: Date, timeZone: string): WallClock => {
  const parts: Record<string, string> = {};
  for (const part of formatterFor(timeZone).formatToParts(time)) parts[part.type] = part.value;
  return {
    weekday: (parts.weekday ?? '').toLowerCase().slice(0, 3) as Weekday,
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    minute: Number(parts.hour) * 60 + Number(parts.minute),
  };
};

/** The canonical IANA name of a zone, or undefined when `Intl` does not know it. */
export const canonicalTimeZone = (name: string): string | undefined => {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
};

const previousDay = (day: Weekday): Weekday => weekdays[(weekdays.indexOf(day) + 6) % 7] as Weekday;

/**
 * Inside the window when the local time is in [start, end) on a listed day. A window whose end is not
 * after its start crosses midnight: it opens on a listed day at start and closes at end on the next
 * day, so a Friday 22:00–02:00 window covers Saturday 01:00 and not Friday 01:00. Times a DST change
 * skips never occur; times it repeats occur twice and are judged by their wall-clock reading each time.
 */
export const withinTimeWindow = (rule: TimeWindowRule, time: Date): boolean => {
  const local = wallClock(time, rule.timeZone);
  if (rule.start < rule.end) {
    return rule.days.includes(local.weekday) && local.minute >= rule.start && local.minute < rule.end;
  }
  if (local.minute >= rule.start) return rule.days.includes(local.weekday);
  return local.minute < rule.end && rule.days.includes(previousDay(local.weekday));
};

export const formatMinutes = (minutes: number): string =>
  `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

/** `HH:MM` (00:00–23:59, and 24:00 where an end of day is meant) into minutes. */
export const parseClockTime = (text: string, allowEndOfDay: boolean): number | undefined => {
  const match = /^([01]\d|2[0-4]):([0-5]\d)$/.exec(text);
  if (match === null) return undefined;
  const minutes = Number(match[1]) * 60 + Number(match[2]);
  if (minutes > 1440 || (minutes === 1440 && !allowEndOfDay)) return undefined;
  return minutes;
};
