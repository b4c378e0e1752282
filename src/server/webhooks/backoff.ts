/**
 * The wait before retrying a webhook POST after `failedAttempts` failures (1 after the first):
 * base, 2·base, 4·base, … capped at max.
 */
export function backoffDelayMs(failedAttempts: number, baseMs: number, maxMs: number): number {
  if (failedAttempts < 1) return 0;
  // 2^40 · base overflows no double and is far above any max; the cap keeps the result exact.
  return Math.min(baseMs * 2 ** Math.min(failedAttempts - 1, 40), maxMs);
}
