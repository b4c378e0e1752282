import { generateClientIdentity, generateServerKeySet } from '../../protocol/keys.js';
import { RequestSigner } from '../signed-request.js';

/** A signer of a fresh installation for a made-up server at `origin` (a test server checks no signature). */
export function testSigner(origin: string): RequestSigner {
  const keys = generateServerKeySet();
  return new RequestSigner(generateClientIdentity(), {
    origin,
    url: origin,
    signKey: keys.signPublicKey.toString('base64url'),
    sealKey: keys.sealPublicKey.toString('base64url'),
    keyId: keys.keyId,
    fingerprint: 'f'.repeat(64),
    confirmHost: null,
    confirmPort: null,
    pinnedAt: '',
  });
}
