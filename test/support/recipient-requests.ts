import { CLIENT_KEY_HEADER, REQUEST_AUTH_HEADER } from '../../src/protocol/constants.js';
import type { ClientIdentity } from '../../src/protocol/keys.js';
import { clientRequestAuthKey, signRequest } from '../../src/protocol/request-auth.js';
import { http } from './http.js';

/** What a client pins of a server for signed requests: its key id and X25519 seal key. */
export interface Pin {
  keyId: string;
  sealKey: Buffer;
}

export async function pinOf(serverUrl: string): Promise<Pin> {
  const known = (await (await http(`${serverUrl}/.well-known/dcx`)).json()) as { keyId: string; sealKey: string };
  return { keyId: known.keyId, sealKey: Buffer.from(known.sealKey, 'base64url') };
}

/**
 * A request of an installation, signed as the dcx client signs it (the MAC covers the JSON bytes sent).
 * fetch with `connection: close`: a pooled keep-alive socket is what made reuse flaky (see http.ts).
 */
export function signedFetch(
  serverUrl: string,
  pin: Pin,
  identity: ClientIdentity,
  method: string,
  path: string,
  json?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<Response> {
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
  const key = clientRequestAuthKey(identity.privateKey, identity.publicKey, pin.sealKey);
  const headers: Record<string, string> = {
    [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url'),
    [REQUEST_AUTH_HEADER]: signRequest(key, pin.keyId, { method, path, body }),
    connection: 'close',
    ...(body ? { 'content-type': 'application/json' } : {}),
    ...extraHeaders,
  };
  return fetch(`${serverUrl}${path}`, { method, headers, body });
}
