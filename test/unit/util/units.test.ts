/** Sizes and durations as operators write them in runbooks and flags. */
import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, parseBytes, parseDuration } from '../../../src/util/units.ts';

describe('parseBytes', () => {
  it('reads binary and decimal units, any case, with or without a space', () => {
    expect(parseBytes('8GiB')).toBe(8 * 1024 ** 3);
    expect(parseBytes('512MB')).toBe(512_000_000);
    expect(parseBytes('16 mib')).toBe(16 * 1024 ** 2);
    expect(parseBytes('1.5KiB')).toBe(1536);
    expect(parseBytes('100')).toBe(100);
    expect(parseBytes(1048576)).toBe(1048576);
  });

  it('refuses what is not a size instead of guessing', () => {
    for (const bad of ['', 'GiB', '8 parsecs', '-1MiB', '1e9', '8GiB extra', 'x'.repeat(41), -5, 1.5, Number.NaN, null, {}]) {
      expect(parseBytes(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });
});

describe('parseDuration', () => {
  it('reads compound durations; a bare number is milliseconds', () => {
    expect(parseDuration('1h30m')).toBe(90 * 60_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2.5s')).toBe(2500);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration('2000')).toBe(2000);
    expect(parseDuration(2000)).toBe(2000);
  });

  it('refuses trailing junk, unknown units and negatives', () => {
    for (const bad of ['', '30m10', '10 minutes', '5w', '-5s', 'm', 'x'.repeat(41), -1, Number.POSITIVE_INFINITY, true]) {
      expect(parseDuration(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });
});

describe('formatting for messages', () => {
  it('formatBytes uses binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(16 * 1024 ** 2)).toBe('16.0 MiB');
    expect(formatBytes(8 * 1024 ** 3)).toBe('8.0 GiB');
    expect(formatBytes(300 * 1024 ** 2)).toBe('300 MiB');
  });

  it('formatDuration reads back as a duration parseDuration accepts (at its precision)', () => {
    expect(formatDuration(250)).toBe('250ms');
    expect(formatDuration(2500)).toBe('2.50s');
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(2 * 3_600_000 + 5 * 60_000)).toBe('2h5m');
    for (const ms of [250, 2500, 90_000, 7_500_000]) expect(parseDuration(formatDuration(ms))).toBeDefined();
  });
});
