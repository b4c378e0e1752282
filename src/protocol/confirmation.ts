import { BufferReader } from './buffer-reader.js';
import { BufferWriter } from './buffer-writer.js';
import {
  DELIVERY_ID_SIZE,
  FINGERPRINT_SIZE,
  FRAME_HEADER_SIZE,
  FrameType,
  LABEL_CONFIRMATION,
  MAX_FILES,
  NONCE_SIZE,
  SHA256_SIZE,
  TAG_SIZE,
} from './constants.js';
import { ProtocolError } from './errors.js';
import { Frame, frameHeader } from './frame.js';
import { deliveryIdToBytes, deliveryIdToString } from './delivery-id.js';
import { deriveKey, newNonce, open, seal } from './seal.js';

/** What the client proves [50]: who it is and the SHA-256 of every file it saved. */
export interface Confirmation {
  deliveryId: string;
  clientFingerprint: string;
  /** hex, in the order of the plug-in data's file list */
  digests: string[];
}

/** The AES key for a delivery's confirmations; the server stores this, never the secret's other uses. */
export function deriveConfirmKey(confirmSecret: Buffer, deliveryId: string): Buffer {
  return deriveKey(confirmSecret, deliveryIdToBytes(deliveryId), LABEL_CONFIRMATION);
}

/** Sent in the clear after the frame header: the delivery id (to look the delivery up) and the nonce. */
const CLEAR_FIELDS_SIZE = DELIVERY_ID_SIZE + NONCE_SIZE;
const CLEAR_PART_SIZE = FRAME_HEADER_SIZE + CLEAR_FIELDS_SIZE;

export function encodeConfirmation(confirmation: Confirmation, confirmSecret: Buffer): Buffer {
  if (confirmation.digests.length > MAX_FILES) throw new ProtocolError('TOO_LARGE', `more than ${MAX_FILES} digests`);
  const payload = new BufferWriter(FINGERPRINT_SIZE + 2 + confirmation.digests.length * SHA256_SIZE)
    .addFixed(Buffer.from(confirmation.clientFingerprint, 'hex'), FINGERPRINT_SIZE)
    .addUInt16(confirmation.digests.length);
  for (const digest of confirmation.digests) payload.addFixed(Buffer.from(digest, 'hex'), SHA256_SIZE);
  const plaintext = payload.flush();
  const nonce = newNonce();
  const idBytes = deliveryIdToBytes(confirmation.deliveryId);
  const clearFields = new BufferWriter(CLEAR_FIELDS_SIZE).addFixed(idBytes, DELIVERY_ID_SIZE).addFixed(nonce, NONCE_SIZE).flush();
  // The frame header and clear fields are the AEAD's additional data, so none can be altered in transit.
  const clear = Buffer.concat([frameHeader(FrameType.Confirmation, CLEAR_FIELDS_SIZE + plaintext.length + TAG_SIZE), clearFields]);
  const sealed = seal(deriveConfirmKey(confirmSecret, confirmation.deliveryId), nonce, plaintext, clear);
  return Buffer.concat([clear, sealed]);
}

/** The clear part of a confirmation frame: enough to look the delivery up. */
export interface SealedConfirmation {
  deliveryId: string;
  nonce: Buffer;
  sealed: Buffer;
  aad: Buffer;
}

export function decodeConfirmationFrame(frame: Frame): SealedConfirmation {
  if (frame.type !== FrameType.Confirmation) throw new ProtocolError('MALFORMED', `expected a confirmation frame, got type ${frame.type}`);
  const reader = new BufferReader(frame.body, 'confirmation');
  const deliveryId = deliveryIdToString(reader.bytes(DELIVERY_ID_SIZE, 'delivery id'));
  const nonce = reader.bytes(NONCE_SIZE, 'nonce');
  const sealed = reader.rest();
  return { deliveryId, nonce, sealed, aad: frame.raw.subarray(0, CLEAR_PART_SIZE) };
}

/** Opens the sealed part with the delivery's confirmation key: SEAL_INVALID when the secret is wrong. */
export function openConfirmation(sealedConfirmation: SealedConfirmation, confirmKey: Buffer): Confirmation {
  const plaintext = open(confirmKey, sealedConfirmation.nonce, sealedConfirmation.sealed, sealedConfirmation.aad, 'confirmation');
  const reader = new BufferReader(plaintext, 'confirmation payload');
  const clientFingerprint = reader.bytes(FINGERPRINT_SIZE, 'client fingerprint').toString('hex');
  const count = reader.uint16('digest count');
  if (count > MAX_FILES) throw new ProtocolError('TOO_LARGE', `confirmation lists ${count} digests, more than ${MAX_FILES}`);
  const digests: string[] = [];
  for (let i = 0; i < count; i++) digests.push(reader.bytes(SHA256_SIZE, `digest ${i}`).toString('hex'));
  reader.end();
  return { deliveryId: sealedConfirmation.deliveryId, clientFingerprint, digests };
}
