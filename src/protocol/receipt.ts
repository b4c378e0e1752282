import { sign, verify } from 'node:crypto';
import { BufferReader } from './buffer-reader.js';
import { BufferWriter } from './buffer-writer.js';
import { signBatch, verifyBatchSignature } from './batch-signature.js';
import {
  DELIVERY_ID_SIZE,
  FINGERPRINT_SIZE,
  KEY_ID_SIZE,
  LABEL_RECEIPT_BATCH_SIGNATURE,
  LABEL_RECEIPT_SIGNATURE,
  LENGTH_SIZE,
  RECEIPT_SALT_SIZE,
  RECEIPT_VERSION_BATCH,
  RECEIPT_VERSION_SINGLE,
  ED25519_SIGNATURE_SIZE,
  VERSION_SIZE,
} from './constants.js';
import { ProtocolError } from './errors.js';
import { publicKeyFromRaw, ServerKeySet } from './keys.js';
import { deliveryIdToBytes, deliveryIdToString } from './delivery-id.js';
import { ContentFileInfo, readFileList, writeFileList } from './file-list.js';
import { secureRandomBytes } from './random.js';

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
/** Where the key id sits in a receipt's clear header (PROTOCOL.md §5): after the length and the version. */
const KEY_ID_OFFSET = LENGTH_SIZE + VERSION_SIZE;
const MIN_RECEIPT_SIZE = LENGTH_SIZE + VERSION_SIZE + KEY_ID_SIZE + DELIVERY_ID_SIZE + ED25519_SIGNATURE_SIZE;
const BAD_SIGNATURE_MESSAGE = 'receipt signature does not verify against the server key';

/**
 * The id (hex) of the key a receipt names in its clear header, read without verifying anything, so that
 * the right key can be looked up first; '' when the receipt is too short to hold one.
 */
export function receiptKeyId(receipt: Buffer): string {
  if (receipt.length < KEY_ID_OFFSET + KEY_ID_SIZE) return '';
  return receipt.subarray(KEY_ID_OFFSET, KEY_ID_OFFSET + KEY_ID_SIZE).toString('hex');
}

function signedBytes(unsigned: Buffer): Buffer {
  return Buffer.concat([Buffer.from(LABEL_RECEIPT_SIGNATURE), unsigned]);
}

/** A receipt's length field (patched once known), then its statement: the version byte and the fields (docs/PROTOCOL.md section 5). */
function startReceipt(fields: ReceiptFields, keys: ServerKeySet, version: number): BufferWriter {
  const writer = new BufferWriter(512)
    .addUInt32(0)
    .addUInt8(version)
    .addFixed(Buffer.from(keys.keyId, 'hex'), KEY_ID_SIZE)
    .addFixed(deliveryIdToBytes(fields.deliveryId), DELIVERY_ID_SIZE)
    .addFixed(fields.clientFingerprint ? Buffer.from(fields.clientFingerprint, 'hex') : ZERO_FINGERPRINT, FINGERPRINT_SIZE)
    .addShortString(fields.requesterAddress)
    .addUInt64(fields.issuedAt.getTime())
    .addUInt64(fields.sentAt?.getTime() ?? 0)
    .addUInt64(fields.confirmedAt.getTime());
  return writeFileList(writer, fields.files);
}

/** A receipt signed on its own (version 1): Ed25519 over the label and every byte before the signature. */
export function signReceipt(fields: ReceiptFields, keys: ServerKeySet): Buffer {
  const writer = startReceipt(fields, keys, RECEIPT_VERSION_SINGLE);
  const unsigned = writer.patchUInt32(0, writer.length + ED25519_SIGNATURE_SIZE).flush();
  return Buffer.concat([unsigned, sign(null, signedBytes(unsigned), keys.signPrivateKey)]);
}

/**
 * The receipts of a batch of confirmations, in order, at the cost of one signature: several become the
 * leaves of a Merkle tree whose root is signed once, each receipt carrying its salt, inclusion path, leaf
 * index, tree size and that signature (version 2). A lone one, or every one when not `together`
 * (BATCH_SIGNATURES=false, for clients that predate version 2), is signed on its own (version 1).
 * The random salt in each leaf keeps a receipt that is never handed out (its acceptance lost to a race
 * and decided again) from being rebuilt out of its guessable statement and the other receipts' paths.
 */
export function signReceipts(batch: ReceiptFields[], keys: ServerKeySet, together = true): Buffer[] {
  if (!together || batch.length <= 1) return batch.map((fields) => signReceipt(fields, keys));
  const salts = secureRandomBytes(RECEIPT_SALT_SIZE * batch.length);
  const writers = batch.map((fields, i) =>
    startReceipt(fields, keys, RECEIPT_VERSION_BATCH).addFixed(
      salts.subarray(i * RECEIPT_SALT_SIZE, (i + 1) * RECEIPT_SALT_SIZE),
      RECEIPT_SALT_SIZE,
    ),
  );
  // Each leaf: the statement and its salt, as they lie in the receipt after its length field.
  const trailers = signBatch(
    writers.map((writer) => writer.flush().subarray(LENGTH_SIZE)),
    LABEL_RECEIPT_BATCH_SIGNATURE,
    keys.signPrivateKey,
  );
  return writers.map((writer, index) => {
    writer.addBytes(trailers[index]);
    return Buffer.from(writer.patchUInt32(0, writer.length).flush());
  });
}

/**
 * Whether the signature of `receipt` (length already checked) holds; returns its statement. Checked
 * before any field is decoded: the trailer of a batch receipt is read from the end.
 */
function verifiedStatement(receipt: Buffer, serverSignPublicKey: Buffer): Buffer {
  const version = receipt[LENGTH_SIZE];
  const signatureAt = receipt.length - ED25519_SIGNATURE_SIZE;
  const signature = receipt.subarray(signatureAt);
  const publicKey = publicKeyFromRaw(serverSignPublicKey, 'Ed25519');
  if (version === RECEIPT_VERSION_SINGLE) {
    if (!verify(null, signedBytes(receipt.subarray(0, signatureAt)), publicKey, signature))
      throw new ProtocolError('BAD_SIGNATURE', BAD_SIGNATURE_MESSAGE);
    return receipt.subarray(LENGTH_SIZE, signatureAt);
  }
  if (version !== RECEIPT_VERSION_BATCH) throw new ProtocolError('UNSUPPORTED_VERSION', `receipt version ${version} is not supported`);
  // The leaf: the statement and its salt, after the length field.
  const leafEnd = verifyBatchSignature(receipt, {
    leafStart: LENGTH_SIZE,
    minLeafEnd: MIN_RECEIPT_SIZE - ED25519_SIGNATURE_SIZE + RECEIPT_SALT_SIZE,
    label: LABEL_RECEIPT_BATCH_SIGNATURE,
    publicKey,
    what: 'batch receipt',
    badSignature: BAD_SIGNATURE_MESSAGE,
  });
  return receipt.subarray(LENGTH_SIZE, leafEnd - RECEIPT_SALT_SIZE);
}

/** Checks a receipt against the server's signing key; returns its fields or throws. */
export function verifyReceipt(receipt: Buffer, serverSignPublicKey: Buffer): ReceiptFields {
  if (receipt.length < MIN_RECEIPT_SIZE) throw new ProtocolError('TRUNCATED', `receipt of ${receipt.length} bytes is too short`);
  const total = receipt.readUInt32BE(0);
  if (total > receipt.length) throw new ProtocolError('TRUNCATED', `receipt says ${total} bytes but has ${receipt.length}`);
  if (total < receipt.length)
    throw new ProtocolError('MALFORMED', `receipt says ${total} bytes but has ${receipt.length - total} trailing bytes`);
  const reader = new BufferReader(verifiedStatement(receipt, serverSignPublicKey), 'receipt');
  reader.uint8('version');
  const keyId = reader.bytes(KEY_ID_SIZE, 'key id').toString('hex');
  const deliveryId = deliveryIdToString(reader.bytes(DELIVERY_ID_SIZE, 'delivery id'));
  const fingerprintBytes = reader.bytes(FINGERPRINT_SIZE, 'client fingerprint');
  const requesterAddress = reader.shortString('requester address');
  const issuedAt = new Date(reader.uint64('issued at'));
  const sentAtMs = reader.uint64('sent at');
  const confirmedAt = new Date(reader.uint64('confirmed at'));
  const files = readFileList(reader, (count) => `receipt lists ${count} files`);
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
