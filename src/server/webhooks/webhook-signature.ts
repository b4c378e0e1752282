import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'DCX-Signature';
export const TIMESTAMP_HEADER = 'DCX-Timestamp';

/**
 * The signature of one webhook POST: `sha256=` + hex HMAC-SHA256, keyed by the webhook's secret,
 * over `<timestamp>.<raw body>` (timestamp: the DCX-Timestamp header, Unix seconds). Signing the
 * timestamp lets a receiver refuse replays of an old, validly signed body.
 */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * What a receiver does (used by tests; documented in docs/WEBHOOKS.md): recompute, compare in
 * constant time, and refuse a timestamp further than `toleranceSeconds` from now.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | undefined,
  timestampHeader: string | undefined,
  body: string,
  options: { toleranceSeconds?: number; now?: number } = {},
): boolean {
  if (!header || !timestampHeader || !/^\d{1,12}$/.test(timestampHeader)) return false;
  const timestamp = Number(timestampHeader);
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, body));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A fresh webhook secret: `whsec_` + 32 random bytes, base64url. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}
