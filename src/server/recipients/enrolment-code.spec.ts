import { sha256Hex } from '../auth/secrets.js';
import { canonicalEnrolmentCode, enrolmentCodeHash, newEnrolmentCode } from './enrolment-code.js';

describe('enrolment codes', () => {
  test('a new code is XXXX-XXXX of Crockford base32, and codes differ', () => {
    const codes = Array.from({ length: 2000 }, () => newEnrolmentCode());
    for (const code of codes) expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
    expect(new Set(codes).size).toBe(codes.length);
    // 40 bits spread over all 32 symbols in every position (2000 draws miss a symbol with probability ~1e-26).
    for (let position = 0; position < 9; position++) {
      if (position === 4) continue;
      expect(new Set(codes.map((code) => code[position])).size).toBe(32);
    }
  });

  test('a typed code is read as Crockford reads it: any case, hyphen or spaces optional, I/L as 1, O as 0', () => {
    expect(canonicalEnrolmentCode('7k3m-q9xd')).toBe('7K3M-Q9XD');
    expect(canonicalEnrolmentCode(' 7K3M Q9XD ')).toBe('7K3M-Q9XD');
    expect(canonicalEnrolmentCode('ILO0-abcd')).toBe('1100-ABCD');
    expect(canonicalEnrolmentCode('7K3M-Q9X')).toBeNull();
    expect(canonicalEnrolmentCode('7K3M-Q9XDE')).toBeNull();
    expect(canonicalEnrolmentCode('UUUU-UUUU')).toBeNull();
    expect(canonicalEnrolmentCode('7K3M-Q9X!')).toBeNull();
  });

  test('the stored hash is SHA-256 of the canonical form, so every typing of a code finds it', () => {
    const code = newEnrolmentCode();
    expect(enrolmentCodeHash(code)).toBe(sha256Hex(code));
    expect(enrolmentCodeHash(canonicalEnrolmentCode(code.toLowerCase().replace('-', ''))!)).toBe(enrolmentCodeHash(code));
    expect(enrolmentCodeHash(code)).not.toContain(code);
  });
});
