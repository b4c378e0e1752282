import { hkdfSync, randomBytes } from 'node:crypto';
import { LABEL_CONFIRMATION, LABEL_PLUGIN_ANONYMOUS, LABEL_PLUGIN_CLIENT } from './constants.js';
import { deriveKey } from './seal.js';

describe('deriveKey (HKDF-SHA256 to a 32-byte key)', () => {
  it('gives RFC 5869 test case 3 (empty salt and info), first 32 bytes of the OKM', () => {
    const ikm = Buffer.alloc(22, 0x0b);
    expect(deriveKey(ikm, Buffer.alloc(0), '').toString('hex')).toBe('8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d');
  });

  it('agrees with node:crypto hkdfSync for random keys and salts under every label the protocol uses', () => {
    for (const label of [LABEL_PLUGIN_CLIENT, LABEL_PLUGIN_ANONYMOUS, LABEL_CONFIRMATION, 'ü label, not ASCII']) {
      for (let i = 0; i < 50; i++) {
        const ikm = randomBytes(i % 70); // empty too
        const salt = randomBytes((i * 7) % 100); // longer than an HMAC block (64) too: hashed first
        expect(deriveKey(ikm, salt, label)).toEqual(Buffer.from(hkdfSync('sha256', ikm, salt, label, 32)));
      }
    }
  });
});
