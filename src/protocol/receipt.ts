import { sign, verify } from 'node:crypto';
import { BufferReader } from './buffer-reader.js';
import { BufferWriter } from './buffer-writer.js';
import {
  DELIVERY_ID_SIZE,
  FINGERPRINT_SIZE,
  KEY_ID_SIZE,
  LABEL_RECEIPT_SIGNATURE,
  MAX_FILES,
  PROTOCOL_VERSION,
  SHA256_SIZE,
  SIGNATURE_SIZE,
} from './constants.js';
import { ProtocolError } from './errors.js';
import { deliveryIdToBytes, deliveryIdToString, publicKeyFromRaw, ServerKeySet } from './keys.js';
import { ContentFileInfo } from './plugin-data.js';

/** Proof of delivery: what the server attests once a confirmation is accepted. */
export interface ReceiptFields {
  keyId: string;
  deliveryId: string;
  clientFingerprint: string | null;
  requesterAddress: string;
  issuedAt: Date;
  /** null when the confirmation arrived before the server saw the last byte leave */
  sentAt: Date | null;
  confirmedAt: Date;
  files: ContentFileInfo[];
}

const ZERO_FINGERPRINT = Buffer.alloc(FINGERPRINT_SIZE);
const MIN_RECEIPT_SIZE = 4 + 1 + KEY_ID_SIZE + DELIVERY_ID_SIZE + SIGNATURE_SIZE;

function signedBytes(unsigned: Buffer): Buffer {
  return Buffer.concat([Buffer.from(LABEL_RECEIPT_SIGNATURE), unsigned]);
}

export function signReceipt(fields: ReceiptFields, keys: ServerKeySet): Buffer {
  const writer = new BufferWriter(256)
    .addUInt32(0)
    .addUInt8(PROTOCOL_VERSION)
    .addFixed(Buffer.from(keys.keyId, 'hex'), KEY_ID_SIZE)
    .addFixed(deliveryIdToBytes(fields.deliveryId), DELIVERY_ID_SIZE)
    .addFixed(fields.clientFingerprint ? Buffer.from(fields.clientFingerprint, 'hex') : ZERO_FINGERPRINT, FINGERPRINT_SIZE)
    .addShortString(fields.requesterAddress)
    .addUInt64(fields.issuedAt.getTime())
    .addUInt64(fields.sentAt?.getTime() ?? 0)
    .addUInt64(fields.confirmedAt.getTime())
    .addUInt16(fields.files.length);
  for (const file of fields.files) writer.addString(file.name).addUInt64(file.size).addFixed(Buffer.from(file.sha256, 'hex'), SHA256_SIZE);
  const unsigned = writer.patchUInt32(0, writer.length + SIGNATURE_SIZE).flush();
  return Buffer.concat([unsigned, sign(null, signedBytes(unsigned), keys.signPrivateKey)]);
}

/** Checks a receipt against the server's signing key; returns its fields or throws. */
export function verifyReceipt(receipt: Buffer, serverSignPublicKey: Buffer): ReceiptFields {
  if (receipt.length < MIN_RECEIPT_SIZE) throw new ProtocolError('TRUNCATED', `receipt of ${receipt.length} bytes is too short`);
  const reader = new BufferReader(receipt.subarray(0, receipt.length - SIGNATURE_SIZE), 'receipt');
  const total = reader.uint32('total length');
  if (total > receipt.length) throw new ProtocolError('TRUNCATED', `receipt says ${total} bytes but has ${receipt.length}`);
  if (total < receipt.length) throw new ProtocolError('MALFORMED', `receipt says ${total} bytes but has ${receipt.length - total} trailing bytes`);
  const version = reader.uint8('version');
  if (version !== PROTOCOL_VERSION) throw new ProtocolError('UNSUPPORTED_VERSION', `receipt version ${version} is not supported`);
  const unsigned = receipt.subarray(0, receipt.length - SIGNATURE_SIZE);
  if (!verify(null, signedBytes(unsigned), publicKeyFromRaw(serverSignPublicKey, 'Ed25519'), receipt.subarray(receipt.length - SIGNATURE_SIZE))) {
    throw new ProtocolError('BAD_SIGNATURE', 'receipt signature does not verify against the server key');
  }
  const keyId = reader.bytes(KEY_ID_SIZE, 'key id').toString('hex');
  const deliveryId = deliveryIdToString(reader.bytes(DELIVERY_ID_SIZE, 'delivery id'));
  const fingerprintBytes = reader.bytes(FINGERPRINT_SIZE, 'client fingerprint');
  const requesterAddress = reader.shortString('requester address');
  const issuedAt = new Date(reader.uint64('issued at'));
  const sentAtMs = reader.uint64('sent at');
  const confirmedAt = new Date(reader.uint64('confirmed at'));
  const count = reader.uint16('file count');
  if (count > MAX_FILES) throw new ProtocolError('TOO_LARGE', `receipt lists ${count} files`);
  const files: ContentFileInfo[] = [];
  for (let i = 0; i < count; i++) {
    files.push({ name: reader.string(`file ${i} name`), size: reader.uint64(`file ${i} size`), sha256: reader.bytes(SHA256_SIZE, `file ${i} sha256`).toString('hex') });
  }
  reader.end();
  return {
    keyId,
    deliveryId,
    clientFingerprint: fingerprintBytes.equals(ZERO_FINGERPRINT) ? null : fingerprintBytes.toString('hex'),
    requesterAddress,
    issuedAt,
    sentAt: sentAtMs ? new Date(sentAtMs) : null,
    confirmedAt,
    files,
  };
}
