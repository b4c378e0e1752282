import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { KEY_ID_SIZE, PUBLIC_KEY_SIZE } from './constants.js';
import { ProtocolError } from './errors.js';

type OkpCurve = 'Ed25519' | 'X25519';

/** The server's keys: Ed25519 signs plug-in data and receipts, X25519 seals plug-in data. */
export interface ServerKeySet {
  keyId: string;
  signPublicKey: Buffer;
  signPrivateKey: KeyObject;
  sealPublicKey: Buffer;
  sealPrivateKey: KeyObject;
}

/** A client installation's identity: an X25519 key pair; its fingerprint is the client information. */
export interface ClientIdentity {
  publicKey: Buffer;
  privateKey: KeyObject;
  fingerprint: string;
}

export function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  if (!jwk.x) throw new Error('not an OKP public key');
  return Buffer.from(jwk.x, 'base64url');
}

export function publicKeyFromRaw(raw: Buffer, curve: OkpCurve): KeyObject {
  if (raw.length !== PUBLIC_KEY_SIZE) throw new ProtocolError('MALFORMED', `${curve} public key must be ${PUBLIC_KEY_SIZE} bytes`);
  return createPublicKey({ key: { kty: 'OKP', crv: curve, x: raw.toString('base64url') }, format: 'jwk' });
}

/** SHA-256 of the raw public key, hex: what users compare and what the server records as the client. */
export function fingerprint(publicKey: Buffer): string {
  return createHash('sha256').update(publicKey).digest('hex');
}

/** Key id: the first 8 bytes of SHA-256(sign public key || seal public key), hex. */
export function serverKeyId(signPublicKey: Buffer, sealPublicKey: Buffer): string {
  return createHash('sha256').update(signPublicKey).update(sealPublicKey).digest().subarray(0, KEY_ID_SIZE).toString('hex');
}

export function generateServerKeySet(): ServerKeySet {
  const sign = generateKeyPairSync('ed25519');
  const seal = generateKeyPairSync('x25519');
  const signPublicKey = rawPublicKey(sign.publicKey);
  const sealPublicKey = rawPublicKey(seal.publicKey);
  return {
    keyId: serverKeyId(signPublicKey, sealPublicKey),
    signPublicKey,
    signPrivateKey: sign.privateKey,
    sealPublicKey,
    sealPrivateKey: seal.privateKey,
  };
}

export function serializeServerKeySet(keys: ServerKeySet): string {
  return JSON.stringify(
    {
      kind: 'dcx-server-keys',
      keyId: keys.keyId,
      sign: keys.signPrivateKey.export({ format: 'jwk' }),
      seal: keys.sealPrivateKey.export({ format: 'jwk' }),
    },
    null,
    2,
  );
}

function privateKeyFromJwk(jwk: unknown, curve: OkpCurve, what: string): KeyObject {
  const candidate = jwk as { kty?: string; crv?: string; d?: string };
  if (candidate?.kty !== 'OKP' || candidate.crv !== curve || typeof candidate.d !== 'string') {
    throw new Error(`${what}: expected an ${curve} private key (JWK)`);
  }
  return createPrivateKey({ key: jwk as object as import('node:crypto').JsonWebKey, format: 'jwk' });
}

export function parseServerKeySet(text: string): ServerKeySet {
  const parsed = JSON.parse(text) as { kind?: string; sign?: unknown; seal?: unknown };
  if (parsed.kind !== 'dcx-server-keys') throw new Error('not a DCX server key file');
  const signPrivateKey = privateKeyFromJwk(parsed.sign, 'Ed25519', 'sign');
  const sealPrivateKey = privateKeyFromJwk(parsed.seal, 'X25519', 'seal');
  const signPublicKey = rawPublicKey(createPublicKey(signPrivateKey));
  const sealPublicKey = rawPublicKey(createPublicKey(sealPrivateKey));
  return { keyId: serverKeyId(signPublicKey, sealPublicKey), signPublicKey, signPrivateKey, sealPublicKey, sealPrivateKey };
}

export function generateClientIdentity(): ClientIdentity {
  const pair = generateKeyPairSync('x25519');
  const publicKey = rawPublicKey(pair.publicKey);
  return { publicKey, privateKey: pair.privateKey, fingerprint: fingerprint(publicKey) };
}

export function serializeClientIdentity(identity: ClientIdentity): string {
  return JSON.stringify({ kind: 'dcx-client-identity', key: identity.privateKey.export({ format: 'jwk' }) }, null, 2);
}

export function parseClientIdentity(text: string): ClientIdentity {
  const parsed = JSON.parse(text) as { kind?: string; key?: unknown };
  if (parsed.kind !== 'dcx-client-identity') throw new Error('not a DCX client identity file');
  const privateKey = privateKeyFromJwk(parsed.key, 'X25519', 'identity');
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { publicKey, privateKey, fingerprint: fingerprint(publicKey) };
}
