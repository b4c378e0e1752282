import { createHash, createPublicKey, sign, verify } from 'node:crypto';
import {
  fingerprint,
  generateClientIdentity,
  generateServerKeySet,
  parseClientIdentity,
  parseServerKeySet,
  publicKeyFromRaw,
  rawPublicKey,
  serializeClientIdentity,
  serializeServerKeySet,
  serverKeyId,
} from './keys.js';
import { refusal } from './testing/test-buffers.js';

const b64u = (hex: string) => Buffer.from(hex, 'hex').toString('base64url');
// RFC 8032 7.1 test 1 and RFC 7748 6.1 (Bob as server seal key, Alice as client), as JWK files by hand.
const SIGN_D = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const SIGN_X = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const SEAL_D = '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb';
const SEAL_X = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
const ALICE_D = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
const ALICE_X = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
const SERVER_FILE = JSON.stringify({
  kind: 'dcx-server-keys',
  keyId: 'c1f978d18794bc8d',
  sign: { kty: 'OKP', crv: 'Ed25519', d: b64u(SIGN_D), x: b64u(SIGN_X) },
  seal: { kty: 'OKP', crv: 'X25519', d: b64u(SEAL_D), x: b64u(SEAL_X) },
});
/** A server key file as JSON.parse reads it back. */
type KeyFile = { sign: Record<string, unknown>; seal: Record<string, unknown> };
const ALICE_FILE = JSON.stringify({ kind: 'dcx-client-identity', key: { kty: 'OKP', crv: 'X25519', d: b64u(ALICE_D), x: b64u(ALICE_X) } });

describe('server key set', () => {
  it('reads a hand-written key file: raw public keys and key id = SHA-256(sign || seal)[0..8]', () => {
    const keys = parseServerKeySet(SERVER_FILE);
    expect(keys.signPublicKey.toString('hex')).toBe(SIGN_X);
    expect(keys.sealPublicKey.toString('hex')).toBe(SEAL_X);
    const expectedId = createHash('sha256')
      .update(Buffer.from(SIGN_X + SEAL_X, 'hex'))
      .digest()
      .subarray(0, 8)
      .toString('hex');
    expect(keys.keyId).toBe(expectedId);
    expect(keys.keyId).toBe('c1f978d18794bc8d');
    expect(serverKeyId(keys.signPublicKey, keys.sealPublicKey)).toBe(expectedId);
  });

  it('round-trips through serialize/parse with the same key id and working private keys', () => {
    const keys = generateServerKeySet();
    const back = parseServerKeySet(serializeServerKeySet(keys));
    expect(back.keyId).toBe(keys.keyId);
    expect(back.signPublicKey.equals(keys.signPublicKey)).toBe(true);
    expect(back.sealPublicKey.equals(keys.sealPublicKey)).toBe(true);
    const message = Buffer.from('dcx');
    expect(verify(null, message, publicKeyFromRaw(keys.signPublicKey, 'Ed25519'), sign(null, message, back.signPrivateKey))).toBe(true);
    expect(rawPublicKey(createPublicKey(back.sealPrivateKey)).equals(keys.sealPublicKey)).toBe(true);
  });

  it('gives different key sets different ids', () => {
    expect(generateServerKeySet().keyId).not.toBe(generateServerKeySet().keyId);
  });

  it('refuses files that are not server key files', () => {
    expect(() => parseServerKeySet(ALICE_FILE)).toThrow('not a DCX server key file');
    const swapped = JSON.parse(SERVER_FILE) as KeyFile;
    [swapped.sign, swapped.seal] = [swapped.seal, swapped.sign];
    expect(() => parseServerKeySet(JSON.stringify(swapped))).toThrow('expected an Ed25519 private key');
    const publicOnly = JSON.parse(SERVER_FILE) as KeyFile;
    delete publicOnly.seal.d;
    expect(() => parseServerKeySet(JSON.stringify(publicOnly))).toThrow('expected an X25519 private key');
  });
});

describe('client identity', () => {
  it('reads a hand-written identity: raw public key and fingerprint = SHA-256(raw public key), hex', () => {
    const alice = parseClientIdentity(ALICE_FILE);
    expect(alice.publicKey.toString('hex')).toBe(ALICE_X);
    expect(alice.fingerprint).toBe(createHash('sha256').update(Buffer.from(ALICE_X, 'hex')).digest('hex'));
    expect(alice.fingerprint).toBe('300c9c9603b92a4b39ed3958bf9240114804db4fd373012c0ca47432d63425ae');
    expect(fingerprint(alice.publicKey)).toBe(alice.fingerprint);
  });

  it('round-trips through serialize/parse with the same fingerprint', () => {
    const identity = generateClientIdentity();
    expect(identity.publicKey).toHaveLength(32);
    expect(identity.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const back = parseClientIdentity(serializeClientIdentity(identity));
    expect(back.fingerprint).toBe(identity.fingerprint);
    expect(back.publicKey.equals(identity.publicKey)).toBe(true);
  });

  it('refuses files that are not client identities', () => {
    expect(() => parseClientIdentity(SERVER_FILE)).toThrow('not a DCX client identity file');
    const ed = JSON.stringify({ kind: 'dcx-client-identity', key: (JSON.parse(SERVER_FILE) as KeyFile).sign });
    expect(() => parseClientIdentity(ed)).toThrow('expected an X25519 private key');
  });
});

describe('raw public keys', () => {
  it('round-trip raw bytes through KeyObjects', () => {
    expect(rawPublicKey(publicKeyFromRaw(Buffer.from(SIGN_X, 'hex'), 'Ed25519')).toString('hex')).toBe(SIGN_X);
    expect(rawPublicKey(publicKeyFromRaw(Buffer.from(ALICE_X, 'hex'), 'X25519')).toString('hex')).toBe(ALICE_X);
  });

  it.each([0, 31, 33])('refuse %i bytes: MALFORMED', (length) => {
    expect(refusal(() => publicKeyFromRaw(Buffer.alloc(length, 9), 'X25519')).code).toBe('MALFORMED');
  });
});
