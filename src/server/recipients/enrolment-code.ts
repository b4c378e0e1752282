import { secureRandomBytes } from '../../protocol/random.js';
import { sha256Hex } from '../auth/secrets.js';

/** Crockford's base32: no I, L, O or U, so a code read aloud or typed is not mistaken. */
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CODE_BYTES = 5;
const CODE_CHARACTERS = 8;

/** A new one-time enrolment code, `XXXX-XXXX`: 40 random bits in Crockford base32. */
export function newEnrolmentCode(): string {
  const bits = secureRandomBytes(CODE_BYTES).readUIntBE(0, CODE_BYTES);
  let text = '';
  for (let i = CODE_CHARACTERS - 1; i >= 0; i--) text += CROCKFORD[Math.floor(bits / 2 ** (5 * i)) % 32];
  return `${text.slice(0, 4)}-${text.slice(4)}`;
}

/**
 * The canonical `XXXX-XXXX` of a code as a person typed it (any case, with or without the hyphen or
 * spaces; I and L read as 1, O as 0, as Crockford decodes them), or null when it cannot be one.
 */
export function canonicalEnrolmentCode(typed: string): string | null {
  const text = typed.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
  if (text.length !== CODE_CHARACTERS || [...text].some((c) => !CROCKFORD.includes(c))) return null;
  return `${text.slice(0, 4)}-${text.slice(4)}`;
}

/** What the database keeps of a code: SHA-256 of its canonical form, hex. The code itself is shown once. */
export function enrolmentCodeHash(canonical: string): string {
  return sha256Hex(canonical);
}
