import { Backoff, MAX_RECONNECT_MS, MIN_RECONNECT_MS, reconnectDelay } from './backoff.js';

describe('reconnectDelay (exponential backoff, full jitter)', () => {
  test('the window doubles per failure from the base, up to the cap', () => {
    const top = () => 1 - Number.EPSILON;
    expect(reconnectDelay(0, 1000, top)).toBe(1000);
    expect(reconnectDelay(1, 1000, top)).toBe(2000);
    expect(reconnectDelay(3, 1000, top)).toBe(8000);
    expect(reconnectDelay(30, 1000, top)).toBe(MAX_RECONNECT_MS);
    expect(reconnectDelay(1000, 1000, top)).toBe(MAX_RECONNECT_MS);
  });

  test('full jitter: anywhere in the window, never under the floor (no tight loop even with retry: 0)', () => {
    expect(reconnectDelay(0, 1000, () => 0)).toBe(MIN_RECONNECT_MS);
    expect(reconnectDelay(2, 1000, () => 0.5)).toBe(Math.round(MIN_RECONNECT_MS + 0.5 * (4000 - MIN_RECONNECT_MS)));
    expect(reconnectDelay(0, 0, () => 0.99)).toBe(MIN_RECONNECT_MS);
  });

  test('many agents dropped at once spread over the window', () => {
    const delays = Array.from({ length: 1000 }, () => reconnectDelay(0, 5000));
    const buckets = new Set(delays.map((d) => Math.min(9, Math.floor(d / 500))));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(MIN_RECONNECT_MS);
    expect(Math.max(...delays)).toBeLessThanOrEqual(5000);
    expect(buckets.size).toBe(10);
  });
});

describe('Backoff', () => {
  test("honours the server's suggestion; widens while failing; starts over once connected", () => {
    const backoff = new Backoff(5000, () => 1 - Number.EPSILON);
    backoff.suggest(200);
    expect(backoff.base).toBe(200);
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([MIN_RECONNECT_MS, 500, 1000]); // a base under the floor counts as the floor
    backoff.succeeded();
    expect(backoff.next()).toBe(MIN_RECONNECT_MS);
    backoff.suggest(Number.NaN);
    expect(backoff.base).toBe(200);
  });
});
