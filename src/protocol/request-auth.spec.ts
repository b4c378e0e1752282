import { generateKeyPairSync } from 'node:crypto';
import { REQUEST_AUTH_MAX_SKEW_MS } from './constants.js';
import { ProtocolError } from './errors.js';
import { generateClientIdentity, generateServerKeySet } from './keys.js';
import { clientSealSecret } from './plugin-data.js';
import { checkSignedRequest, clientRequestAuthKey, parseRequestAuth, requestAuthKey, signRequest } from './request-auth.js';

const NOW = 1_800_000_000_000;
const NONCE = Buffer.alloc(16, 7);
const target = { method: 'get', path: '/api/inbox?limit=5' };

describe('signed requests', () => {
  const server = generateServerKeySet();
  const client = generateClientIdentity();
  const clientKey = clientRequestAuthKey(client.privateKey, client.publicKey, server.sealPublicKey);
  const serverKey = requestAuthKey(clientSealSecret(server, client.publicKey), client.publicKey);

  it('gives client and server the same key without sending it', () => {
    expect(clientKey.equals(serverKey)).toBe(true);
    const other = generateClientIdentity();
    expect(clientRequestAuthKey(other.privateKey, other.publicKey, server.sealPublicKey).equals(serverKey)).toBe(false);
  });

  it('accepts its own signature and names each field in the header', () => {
    const header = signRequest(clientKey, server.keyId, target, { now: NOW, nonce: NONCE });
    expect(header).toBe(
      `DCX1 kid=${server.keyId}, ts=${NOW}, nonce=${NONCE.toString('base64url')}, mac=${parseRequestAuth(header).mac.toString('base64url')}`,
    );
    const fields = parseRequestAuth(header);
    expect(fields).toMatchObject({ keyId: server.keyId, timestamp: NOW });
    expect(checkSignedRequest(serverKey, fields, { ...target, method: 'GET' }, NOW)).toBeNull();
  });

  it('refuses a changed method, path, body, key id or nonce', () => {
    const body = Buffer.from('{"code":"K7QF-2M9X"}');
    const fields = parseRequestAuth(
      signRequest(clientKey, server.keyId, { method: 'POST', path: '/api/recipients/enrol', body }, { now: NOW }),
    );
    const base = { method: 'POST', path: '/api/recipients/enrol', body };
    expect(checkSignedRequest(serverKey, fields, base, NOW)).toBeNull();
    expect(checkSignedRequest(serverKey, fields, { ...base, method: 'PUT' }, NOW)).toBe('bad signature');
    expect(checkSignedRequest(serverKey, fields, { ...base, path: '/api/recipients/enrol?x=1' }, NOW)).toBe('bad signature');
    expect(checkSignedRequest(serverKey, fields, { ...base, body: Buffer.from('{"code":"K7QF-2M9Y"}') }, NOW)).toBe('bad signature');
    expect(checkSignedRequest(serverKey, { ...fields, keyId: '0'.repeat(16) }, base, NOW)).toBe('bad signature');
    expect(checkSignedRequest(serverKey, { ...fields, nonce: Buffer.alloc(16) }, base, NOW)).toBe('bad signature');
  });

  it('refuses a timestamp outside the allowed skew either way, before checking the MAC', () => {
    const fields = parseRequestAuth(signRequest(clientKey, server.keyId, target, { now: NOW }));
    expect(checkSignedRequest(serverKey, fields, target, NOW + REQUEST_AUTH_MAX_SKEW_MS)).toBeNull();
    expect(checkSignedRequest(serverKey, fields, target, NOW + REQUEST_AUTH_MAX_SKEW_MS + 1)).toBe('stale timestamp');
    expect(checkSignedRequest(serverKey, fields, target, NOW - REQUEST_AUTH_MAX_SKEW_MS - 1)).toBe('stale timestamp');
  });

  it('refuses a key from another curve', () => {
    const ed = generateKeyPairSync('ed25519');
    expect(() => clientRequestAuthKey(ed.privateKey, client.publicKey, server.sealPublicKey)).toThrow();
  });

  it.each([
    ['', 'must start with DCX1'],
    ['Bearer abc', 'must start with DCX1'],
    ['DCX1 kid=0123456789abcdef, ts=1, nonce=AAAAAAAAAAAAAAAAAAAAAA', 'mac must be base64url of 32 bytes'],
    ['DCX1 kid=xyz, ts=1, nonce=AAAAAAAAAAAAAAAAAAAAAA, mac=' + 'A'.repeat(43), 'kid must be'],
    ['DCX1 kid=0123456789abcdef, ts=-1, nonce=AAAAAAAAAAAAAAAAAAAAAA, mac=' + 'A'.repeat(43), 'ts must be'],
    ['DCX1 kid=0123456789abcdef, ts=1, nonce=AAAA, mac=' + 'A'.repeat(43), 'nonce must be base64url of 16 bytes'],
    ['DCX1 kid=0123456789abcdef, kid=0123456789abcdef, ts=1, nonce=AAAAAAAAAAAAAAAAAAAAAA, mac=' + 'A'.repeat(43), 'kid given twice'],
    ['DCX1 kid=0123456789abcdef, ts=1, nonce=AAAAAAAAAAAAAAAAAAAAAA, mac=' + 'A'.repeat(43) + ', x=1', 'exactly kid, ts, nonce and mac'],
    ['DCX1 kid=0123456789abcdef ts=1', 'cannot read'],
  ])('refuses the header %j as malformed (%s)', (header, reason) => {
    expect(() => parseRequestAuth(header)).toThrow(ProtocolError);
    expect(() => parseRequestAuth(header)).toThrow(reason);
  });
});
