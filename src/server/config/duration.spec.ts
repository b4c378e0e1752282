import { parseDurationMs } from './duration.js';

describe('parseDurationMs', () => {
  test.each([
    ['90s', 90_000],
    ['15m', 900_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['500ms', 500],
    ['3600', 3_600_000],
    [' 2H ', 7_200_000],
    ['0', 0],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  test.each([[''], ['s'], ['-5s'], ['1.5h'], ['10 minutes'], ['1h30m'], ['5w'], ['1e3'], ['999999999999d']])(
    '%j is not a duration',
    (text) => {
      expect(parseDurationMs(text)).toBeNull();
    },
  );
});
