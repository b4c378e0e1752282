/** Units a duration may carry; a bare number is seconds. */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration such as `90s`, `15m`, `24h`, `7d`, `500ms` or plain seconds (`3600`) into
 * milliseconds; null when the text is not one (no sign, no fraction, one unit).
 */
export function parseDurationMs(text: string): number | null {
  const match = /^(\d{1,12})\s*(ms|s|m|h|d)?$/i.exec(text.trim());
  if (!match) return null;
  const ms = Number(match[1]) * UNIT_MS[(match[2] ?? 's').toLowerCase()];
  return Number.isSafeInteger(ms) ? ms : null;
}
