import { backoffDelayMs } from './backoff.js';

describe('webhook retry backoff', () => {
  test('doubles from the base after each failure', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, 1000, 3_600_000))).toEqual([1000, 2000, 4000, 8000, 16000]);
  });

  test('is capped at the maximum, also for absurd attempt counts', () => {
    expect(backoffDelayMs(13, 1000, 3_600_000)).toBe(3_600_000);
    expect(backoffDelayMs(10_000, 1000, 60_000)).toBe(60_000);
  });

  test('no failure yet, no wait', () => {
    expect(backoffDelayMs(0, 1000, 60_000)).toBe(0);
  });
});
