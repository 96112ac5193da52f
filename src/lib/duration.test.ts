import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['90s', 90],
    ['15m', 900],
    ['1h', 3600],
    ['30d', 2_592_000],
    ['2w', 1_209_600],
    ['1h30m', 5400],
  ])('%s is %i seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(['', '1', 'h', '1x', '-1h', '1.5h', '1h x', ' 1 h'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('formats whole units back', () => {
    expect(formatDuration(86_400)).toBe('1d');
    expect(formatDuration(5400)).toBe('90m');
    expect(formatDuration(61)).toBe('61s');
  });
});
