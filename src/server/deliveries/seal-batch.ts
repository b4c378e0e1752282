import { deriveConfirmKey } from '../../protocol/confirmation.js';
import { ProtocolError, type ProtocolErrorCode } from '../../protocol/errors.js';
import type { ServerKeySet } from '../../protocol/keys.js';
import { sealPluginData, type PluginData } from '../../protocol/plugin-data.js';

/** One new delivery's plug-in data to seal, as it crosses to a sealing thread (Buffers arrive as Uint8Arrays). */
export interface SealRequest {
  data: PluginData;
  /** Raw X25519 key from DCX-Client-Key, or null for anonymous plug-in data. */
  clientKey: Uint8Array | null;
  /** The key set the caller means: a sealing thread refuses to use another. */
  keyId: string;
}

export type SealResult = { pluginData: Uint8Array; confirmKey: Uint8Array } | { error: { code: ProtocolErrorCode; message: string } };

const asBuffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

/**
 * Seals each request's plug-in data and derives its confirmation key: the per-bundle cryptography
 * (X25519, HKDF, AES-GCM, Ed25519). A request the protocol refuses (a low-order client key) gets its
 * error back; it does not fail the others.
 */
export function sealBatch(requests: readonly SealRequest[], keys: ServerKeySet): SealResult[] {
  return requests.map(({ data, clientKey, keyId }) => {
    if (keyId !== keys.keyId) throw new Error(`sealing thread holds key ${keys.keyId}, not ${keyId}`);
    const plain: PluginData = { ...data, confirmSecret: asBuffer(data.confirmSecret) };
    try {
      return { pluginData: sealPluginData(plain, keys, clientKey && asBuffer(clientKey)), confirmKey: deriveConfirmKey(plain.confirmSecret, plain.deliveryId) };
    } catch (error) {
      if (error instanceof ProtocolError) return { error: { code: error.code, message: error.message } };
      throw error;
    }
  });
}

/** A result as the caller uses it: Buffers again, or the ProtocolError it stood for. */
export function unpackSealResult(result: SealResult): { pluginData: Buffer; confirmKey: Buffer } {
  if ('error' in result) throw new ProtocolError(result.error.code, result.error.message);
  return { pluginData: asBuffer(result.pluginData), confirmKey: asBuffer(result.confirmKey) };
}
