import { createCipheriv, createDecipheriv, createHmac, diffieHellman, KeyObject } from 'node:crypto';
import { AES_KEY_SIZE, NONCE_SIZE, TAG_SIZE } from './constants.js';
import { ProtocolError } from './errors.js';
import { secureRandomBytes } from './random.js';

/** T(1) of HKDF-Expand: the block counter byte after the info. */
const FIRST_BLOCK = Buffer.from([1]);

/**
 * HKDF-SHA256 (RFC 5869) to one AES-256 key. The key fits in the first output block (AES_KEY_SIZE <= 32),
 * so HKDF is two HMACs: PRK = HMAC(salt, ikm), key = HMAC(PRK, label || 0x01). Written out because hkdfSync makes a
 * KeyObject and a crypto job per call, twice the cost, and two keys are derived for every bundle.
 */
export function deriveKey(ikm: Buffer, salt: Buffer, label: string): Buffer {
  const prk = createHmac('sha256', salt).update(ikm).digest();
  return createHmac('sha256', prk).update(label).update(FIRST_BLOCK).digest().subarray(0, AES_KEY_SIZE);
}

/** X25519; a low-order public key (OpenSSL refuses to derive with it) is a MALFORMED ProtocolError, not a bare Error. */
export function x25519(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  try {
    return diffieHellman({ privateKey, publicKey });
  } catch {
    throw new ProtocolError('MALFORMED', 'X25519 public key is not usable (low-order point): no shared secret');
  }
}

export function newNonce(): Buffer {
  return secureRandomBytes(NONCE_SIZE);
}

/** AES-256-GCM; returns ciphertext followed by the 16-byte tag. */
export function seal(key: Buffer, nonce: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_SIZE });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

export function open(key: Buffer, nonce: Buffer, sealed: Buffer, aad: Buffer, what: string): Buffer {
  if (sealed.length < TAG_SIZE) throw new ProtocolError('TRUNCATED', `${what}: sealed payload shorter than its tag`);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_SIZE });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE)), decipher.final()]);
  } catch {
    throw new ProtocolError('SEAL_INVALID', `${what}: cannot be opened with this key (tampered or not meant for it)`);
  }
}
