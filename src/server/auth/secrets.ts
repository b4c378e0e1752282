import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh random secret: 32 bytes, base64url (43 characters). */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** SHA-256 of a secret, hex: what is stored instead of the secret. */
export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Whether `secret` hashes to `expectedHashHex`, compared in constant time (both sides are 32-byte digests). */
export function matchesHash(secret: string, expectedHashHex: string): boolean {
  const expected = Buffer.from(expectedHashHex, 'hex');
  const actual = createHash('sha256').update(secret, 'utf8').digest();
  return expected.length === actual.length && timingSafeEqual(actual, expected);
}
