// Fixed values of the worked example in docs/PROTOCOL.md, shared by the protocol specs.
import { createPrivateKey, KeyObject } from 'node:crypto';
import { ServerKeySet } from '../keys.js';

/** An Ed25519 ('70') or X25519 ('6e') private key from its 32-byte seed, through PKCS#8 DER. */
export function pkcs8(oid: '70' | '6e', seed: string): KeyObject {
  return createPrivateKey({ key: Buffer.from(`302e020100300506032b65${oid}04220420${seed}`, 'hex'), format: 'der', type: 'pkcs8' });
}

/** The server keys: RFC 8032 7.1 test 1 (Ed25519) and RFC 7748 6.1 Bob (X25519). */
export const SERVER: ServerKeySet = {
  keyId: 'c1f978d18794bc8d',
  signPublicKey: Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex'),
  signPrivateKey: pkcs8('70', '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'),
  sealPublicKey: Buffer.from('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f', 'hex'),
  sealPrivateKey: pkcs8('6e', '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'),
};

export const DELIVERY_ID = '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0';
export const ID_HEX = '0f1e2d3c4b5a49788796a5b4c3d2e1f0';
/** SHA-256 of the RFC 7748 Alice public key (the client), and SHA-256 of "hello, DCX\n" (the file). */
export const FINGERPRINT = '300c9c9603b92a4b39ed3958bf9240114804db4fd373012c0ca47432d63425ae';
export const DIGEST = '32e6a81f1fe552d2a8fd4ca7dd98d872e09eccfe0c4e28b4844eb50c5d440b2a';
export const NONCE = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaab', 'hex');
export const ISSUED = Date.UTC(2026, 10, 2, 9, 0, 0);

/**
 * The confirmation frame of the worked example, written out byte by byte from the layout:
 * [len u32][version 01][type 01][delivery id 16][nonce 12][sealed payload + tag].
 */
export const CONFIRMATION_FRAME = Buffer.from(
  '00000074' +
    '01' +
    '01' +
    '0f1e2d3c4b5a49788796a5b4c3d2e1f0' +
    'a0a1a2a3a4a5a6a7a8a9aaab' +
    'e9a0324451e93cb0403e59e95f08b042b8de33d2a2894c2724c1249521d8c8778af09540def6e59150d1ba7f96020fedf5d0' +
    '8fbad402cfee952e694dd092d2433a604aa37cb86cedb21c7fa3b8d2a5dd8732',
  'hex',
);
