// Signed requests of an enrolled client installation: no bearer secret, only the installation's X25519 key.
//
// The client and the server share X25519(client key, server seal key) without sending it; HKDF of it keys an
// HMAC-SHA256 over the request (method, path and query, timestamp, nonce, server key id, SHA-256 of the body).
// Only the holder of the client's private key (or the server) can make the MAC; the timestamp bounds its life
// and the server refuses a nonce it has seen, so a captured request cannot be replayed.
//
//   DCX-Client-Key: <base64url of the 32-byte X25519 public key>
//   DCX-Auth: DCX1 kid=<server key id>, ts=<unix ms>, nonce=<base64url 16 bytes>, mac=<base64url 32 bytes>
import { createHash, createHmac, KeyObject, timingSafeEqual } from 'node:crypto';
import {
  LABEL_REQUEST_AUTH,
  REQUEST_AUTH_MAC_SIZE,
  REQUEST_AUTH_MAX_SKEW_MS,
  REQUEST_AUTH_NONCE_SIZE,
  REQUEST_AUTH_SCHEME,
} from './constants.js';
import { ProtocolError } from './errors.js';
import { publicKeyFromRaw } from './keys.js';
import { secureRandomBytes } from './random.js';
import { deriveKey, x25519 } from './seal.js';

/** What the MAC covers besides the header's own fields. */
export interface SignedRequestTarget {
  method: string;
  /** Path and query exactly as sent (`/api/inbox?limit=10`). */
  path: string;
  /** The raw request body; empty or absent for none. */
  body?: Buffer;
}

export interface RequestAuthFields {
  keyId: string;
  /** Unix time in milliseconds, as the client's clock had it. */
  timestamp: number;
  nonce: Buffer;
  mac: Buffer;
}

const EMPTY = Buffer.alloc(0);
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const KEY_ID = /^[0-9a-f]{16}$/;

/**
 * The HMAC key of one client installation with one server key set: HKDF of their X25519 secret, salted with
 * the client's public key. The server gets the secret from ServerKeysService.clientSealSecret (the same
 * X25519 value as for sealing; the label keeps the derived keys apart).
 */
export function requestAuthKey(sharedSecret: Buffer, clientPublicKey: Buffer): Buffer {
  return deriveKey(sharedSecret, clientPublicKey, LABEL_REQUEST_AUTH);
}

/** The client side: the key from its private key and the server's published seal key (raw 32 bytes). */
export function clientRequestAuthKey(clientPrivateKey: KeyObject, clientPublicKey: Buffer, serverSealKey: Buffer): Buffer {
  return requestAuthKey(x25519(clientPrivateKey, publicKeyFromRaw(serverSealKey, 'X25519')), clientPublicKey);
}

function macOf(key: Buffer, fields: Omit<RequestAuthFields, 'mac'>, target: SignedRequestTarget): Buffer {
  const bodyDigest = createHash('sha256')
    .update(target.body ?? EMPTY)
    .digest('hex');
  const text = [
    REQUEST_AUTH_SCHEME,
    target.method.toUpperCase(),
    target.path,
    String(fields.timestamp),
    fields.nonce.toString('base64url'),
    fields.keyId,
    bodyDigest,
  ].join('\n');
  return createHmac('sha256', key).update(text).digest();
}

/** The DCX-Auth header value for one request. `now` and `nonce` are for tests. */
export function signRequest(
  key: Buffer,
  keyId: string,
  target: SignedRequestTarget,
  options: { now?: number; nonce?: Buffer } = {},
): string {
  const fields = { keyId, timestamp: options.now ?? Date.now(), nonce: options.nonce ?? secureRandomBytes(REQUEST_AUTH_NONCE_SIZE) };
  const mac = macOf(key, fields, target);
  return `${REQUEST_AUTH_SCHEME} kid=${keyId}, ts=${fields.timestamp}, nonce=${fields.nonce.toString('base64url')}, mac=${mac.toString('base64url')}`;
}

/** Parses a DCX-Auth header; anything but exactly the four fields, well formed, is MALFORMED with the reason. */
export function parseRequestAuth(header: string): RequestAuthFields {
  const [scheme, ...rest] = header.trim().split(/\s+/);
  if (scheme !== REQUEST_AUTH_SCHEME) throw new ProtocolError('MALFORMED', `DCX-Auth must start with ${REQUEST_AUTH_SCHEME}`);
  const params = new Map<string, string>();
  for (const part of rest.join(' ').split(',')) {
    const match = /^\s*([a-z]+)=([^\s,]+)\s*$/.exec(part);
    if (!match) throw new ProtocolError('MALFORMED', `DCX-Auth: cannot read ${JSON.stringify(part.trim())}`);
    if (params.has(match[1])) throw new ProtocolError('MALFORMED', `DCX-Auth: ${match[1]} given twice`);
    params.set(match[1], match[2]);
  }
  const keyId = params.get('kid') ?? '';
  const ts = params.get('ts') ?? '';
  const nonce = decodeFixed(params.get('nonce'), REQUEST_AUTH_NONCE_SIZE, 'nonce');
  const mac = decodeFixed(params.get('mac'), REQUEST_AUTH_MAC_SIZE, 'mac');
  if (!KEY_ID.test(keyId)) throw new ProtocolError('MALFORMED', 'DCX-Auth: kid must be the 16 hex digits of a server key id');
  if (!/^\d{1,15}$/.test(ts)) throw new ProtocolError('MALFORMED', 'DCX-Auth: ts must be unix time in milliseconds');
  if (params.size !== 4) throw new ProtocolError('MALFORMED', 'DCX-Auth takes exactly kid, ts, nonce and mac');
  return { keyId, timestamp: Number(ts), nonce, mac };
}

function decodeFixed(text: string | undefined, size: number, what: string): Buffer {
  const bytes = text !== undefined && BASE64URL.test(text) ? Buffer.from(text, 'base64url') : EMPTY;
  if (bytes.length !== size) throw new ProtocolError('MALFORMED', `DCX-Auth: ${what} must be base64url of ${size} bytes`);
  return bytes;
}

/** Why a well-formed signed request is refused, or null when its MAC is right and its timestamp fresh. */
export function checkSignedRequest(
  key: Buffer,
  fields: RequestAuthFields,
  target: SignedRequestTarget,
  now: number = Date.now(),
): 'stale timestamp' | 'bad signature' | null {
  if (Math.abs(now - fields.timestamp) > REQUEST_AUTH_MAX_SKEW_MS) return 'stale timestamp';
  const expected = macOf(key, fields, target);
  return timingSafeEqual(expected, fields.mac) ? null : 'bad signature';
}
