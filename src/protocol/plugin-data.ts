import { sign, verify } from 'node:crypto';
import { batchTrailerSize, signBatch, verifyBatchSignature } from './batch-signature.js';
import { BufferReader } from './buffer-reader.js';
import { BufferWriter } from './buffer-writer.js';
import {
  DELIVERY_ID_SIZE,
  FINGERPRINT_SIZE,
  KEY_ID_SIZE,
  LABEL_PLUGIN_ANONYMOUS,
  LABEL_PLUGIN_BATCH_SIGNATURE,
  LABEL_PLUGIN_CLIENT,
  LABEL_PLUGIN_SIGNATURE,
  MAX_FILES,
  MAX_PLUGIN_DATA_SIZE,
  NONCE_SIZE,
  PLUGIN_HEADER_SIZE,
  PLUGIN_VERSION_BATCH,
  PLUGIN_VERSION_SINGLE,
  PUBLIC_KEY_SIZE,
  SALT_SIZE,
  SealMode,
  SECRET_SIZE,
  ED25519_SIGNATURE_SIZE,
  TAG_SIZE,
} from './constants.js';
import { ProtocolError } from './errors.js';
import { ClientIdentity, fingerprint, publicKeyFromRaw, ServerKeySet, serverKeyId } from './keys.js';
import { deliveryIdToBytes, deliveryIdToString } from './delivery-id.js';
import { ContentFileInfo, readFileList, writeFileList } from './file-list.js';
import { secureRandomBytes } from './random.js';
import { deriveKey, newNonce, open, seal, x25519 } from './seal.js';

/** What the server tells the client about one delivery [40]. */
export interface PluginData {
  deliveryId: string;
  /** Client information: the client key's fingerprint (client-sealed) and the requester's IP as the server saw it. */
  client: { fingerprint: string | null; address: string };
  /** Server information: where to confirm, and the HTTP origin that issued the bundle. */
  server: { host: string; confirmPort: number; url: string };
  /** Per-delivery secret: keys the confirmation. */
  confirmSecret: Buffer;
  files: ContentFileInfo[];
  issuedAt: Date;
  expiresAt: Date;
}

/** The clear, signed header of a plug-in data record. */
export interface PluginEnvelope {
  version: number;
  mode: 'anonymous' | 'client';
  keyId: string;
  signPublicKey: Buffer;
  sealPublicKey: Buffer;
  /** Fingerprint of the client the record is sealed to, null when anonymous. */
  recipient: string | null;
}

const SEAL_MODES: readonly number[] = [SealMode.Anonymous, SealMode.Client];
const MIN_RECORD_SIZE = PLUGIN_HEADER_SIZE + TAG_SIZE + ED25519_SIGNATURE_SIZE;
const ZERO_FINGERPRINT = Buffer.alloc(FINGERPRINT_SIZE);
const BAD_SIGNATURE_MESSAGE = 'plug-in data signature does not verify: the bundle was altered or not made by this server';

function sealKeyFor(mode: SealMode, salt: Buffer, ikm: Buffer): Buffer {
  return deriveKey(ikm, salt, mode === SealMode.Client ? LABEL_PLUGIN_CLIENT : LABEL_PLUGIN_ANONYMOUS);
}

function signedBytes(recordWithoutSignature: Buffer): Buffer {
  return Buffer.concat([Buffer.from(LABEL_PLUGIN_SIGNATURE), recordWithoutSignature]);
}

function encodePayload(data: PluginData): Buffer {
  if (data.files.length > MAX_FILES) throw new ProtocolError('TOO_LARGE', `more than ${MAX_FILES} files`);
  const writer = new BufferWriter(512)
    .addFixed(deliveryIdToBytes(data.deliveryId), DELIVERY_ID_SIZE)
    .addFixed(data.client.fingerprint ? Buffer.from(data.client.fingerprint, 'hex') : ZERO_FINGERPRINT, FINGERPRINT_SIZE)
    .addShortString(data.client.address)
    .addString(data.server.host)
    .addUInt16(data.server.confirmPort)
    .addString(data.server.url)
    .addFixed(data.confirmSecret, SECRET_SIZE)
    .addUInt64(data.issuedAt.getTime())
    .addUInt64(data.expiresAt.getTime());
  return writeFileList(writer, data.files).flush();
}

function decodePayload(payload: Buffer): PluginData {
  const reader = new BufferReader(payload, 'plug-in data payload');
  const deliveryId = deliveryIdToString(reader.bytes(DELIVERY_ID_SIZE, 'delivery id'));
  const clientFingerprint = reader.bytes(FINGERPRINT_SIZE, 'client fingerprint');
  const address = reader.shortString('client address');
  const host = reader.string('server host');
  const confirmPort = reader.uint16('confirmation port');
  const url = reader.string('server url');
  const confirmSecret = Buffer.from(reader.bytes(SECRET_SIZE, 'confirmation secret'));
  const issuedAt = new Date(reader.uint64('issued at'));
  const expiresAt = new Date(reader.uint64('expires at'));
  const files = readFileList(reader, (count) => `plug-in data lists ${count} files, more than ${MAX_FILES}`);
  reader.end();
  return {
    deliveryId,
    client: { fingerprint: clientFingerprint.equals(ZERO_FINGERPRINT) ? null : clientFingerprint.toString('hex'), address },
    server: { host, confirmPort, url },
    confirmSecret,
    files,
    issuedAt,
    expiresAt,
  };
}

/**
 * X25519 of the server's seal key and a client's public key: what plug-in data sealed to that client
 * is keyed from (with a fresh salt per record). The same for every record sealed to that client.
 */
export function clientSealSecret(keys: ServerKeySet, clientPublicKey: Buffer): Buffer {
  return x25519(keys.sealPrivateKey, publicKeyFromRaw(clientPublicKey, 'X25519'));
}

/** Gives clientSealSecret(keys, clientPublicKey): computed, or kept from an earlier record (ServerKeysService). */
export type ClientSealSecretSource = (keys: ServerKeySet, clientPublicKey: Buffer) => Buffer;

/** One record to seal: the plug-in data and the client key it is sealed to (null: anonymous). */
export interface PluginSealRequest {
  data: PluginData;
  clientPublicKey: Buffer | null;
}

/**
 * The header and sealed payload of a record whose signature part (single signature, or batch trailer)
 * will take `signatureSize` bytes: the header states the whole record's length.
 */
function sealedPart(
  { data, clientPublicKey }: PluginSealRequest,
  keys: ServerKeySet,
  version: number,
  signatureSize: number,
  secretOf: ClientSealSecretSource,
): Buffer {
  const mode = clientPublicKey ? SealMode.Client : SealMode.Anonymous;
  const salt = secureRandomBytes(SALT_SIZE);
  const nonce = newNonce();
  const ikm = clientPublicKey ? secretOf(keys, clientPublicKey) : keys.sealPublicKey;
  const header = new BufferWriter(PLUGIN_HEADER_SIZE)
    .addUInt32(0) // total length, patched below
    .addUInt8(version)
    .addUInt8(mode)
    .addFixed(Buffer.from(keys.keyId, 'hex'), KEY_ID_SIZE)
    .addFixed(keys.signPublicKey, PUBLIC_KEY_SIZE)
    .addFixed(keys.sealPublicKey, PUBLIC_KEY_SIZE)
    .addFixed(clientPublicKey ? Buffer.from(fingerprint(clientPublicKey), 'hex') : ZERO_FINGERPRINT, FINGERPRINT_SIZE)
    .addFixed(salt, SALT_SIZE)
    .addFixed(nonce, NONCE_SIZE);
  const payload = encodePayload(data);
  const total = PLUGIN_HEADER_SIZE + payload.length + TAG_SIZE + signatureSize;
  if (total > MAX_PLUGIN_DATA_SIZE) throw new ProtocolError('TOO_LARGE', `plug-in data of ${total} bytes exceeds ${MAX_PLUGIN_DATA_SIZE}`);
  const headerBytes = header.patchUInt32(0, total).flush();
  return Buffer.concat([headerBytes, seal(sealKeyFor(mode, salt, ikm), nonce, payload, headerBytes)]);
}

/**
 * [88] Builds the sealed, signed plug-in data record (version 1, signed on its own). With a client
 * public key only that client can open it (X25519 + HKDF + AES-256-GCM); without one it is sealed with
 * the server's bundle key.
 */
export function sealPluginData(
  data: PluginData,
  keys: ServerKeySet,
  clientPublicKey: Buffer | null,
  secretOf: ClientSealSecretSource = clientSealSecret,
): Buffer {
  const unsigned = sealedPart({ data, clientPublicKey }, keys, PLUGIN_VERSION_SINGLE, ED25519_SIGNATURE_SIZE, secretOf);
  return Buffer.concat([unsigned, sign(null, signedBytes(unsigned), keys.signPrivateKey)]);
}

/**
 * The records of bundles issued together, in order, at the cost of one signature: several are the
 * leaves of a Merkle tree whose root is signed once, each record ending with its inclusion path and that
 * signature (version 2, batch-signature.ts). A lone one, or every one when not `together`
 * (BATCH_SIGNATURES=false, for clients that predate version 2), is signed on its own (version 1).
 */
export function sealPluginDataBatch(
  batch: PluginSealRequest[],
  keys: ServerKeySet,
  secretOf: ClientSealSecretSource = clientSealSecret,
  together = true,
): Buffer[] {
  if (!together || batch.length <= 1)
    return batch.map(({ data, clientPublicKey }) => sealPluginData(data, keys, clientPublicKey, secretOf));
  const leaves = batch.map((request, index) =>
    sealedPart(request, keys, PLUGIN_VERSION_BATCH, batchTrailerSize(index, batch.length), secretOf),
  );
  const trailers = signBatch(leaves, LABEL_PLUGIN_BATCH_SIGNATURE, keys.signPrivateKey);
  return leaves.map((leaf, index) => Buffer.concat([leaf, trailers[index]]));
}

interface ParsedRecord {
  envelope: PluginEnvelope;
  header: Buffer;
  salt: Buffer;
  nonce: Buffer;
  sealed: Buffer;
}

function parseRecord(record: Buffer): ParsedRecord {
  if (record.length < MIN_RECORD_SIZE)
    throw new ProtocolError('TRUNCATED', `plug-in data of ${record.length} bytes is shorter than the minimum ${MIN_RECORD_SIZE}`);
  if (record.length > MAX_PLUGIN_DATA_SIZE)
    throw new ProtocolError('TOO_LARGE', `plug-in data of ${record.length} bytes exceeds ${MAX_PLUGIN_DATA_SIZE}`);
  const reader = new BufferReader(record, 'plug-in data');
  const total = reader.uint32('total length');
  if (total > record.length) throw new ProtocolError('TRUNCATED', `plug-in data says ${total} bytes but has ${record.length}`);
  if (total < record.length)
    throw new ProtocolError('MALFORMED', `plug-in data says ${total} bytes but has ${record.length - total} trailing bytes`);
  const version = reader.uint8('version');
  if (version !== PLUGIN_VERSION_SINGLE && version !== PLUGIN_VERSION_BATCH) {
    throw new ProtocolError(
      'UNSUPPORTED_VERSION',
      `plug-in data version ${version} is not supported (expected ${PLUGIN_VERSION_SINGLE} or ${PLUGIN_VERSION_BATCH})`,
    );
  }
  const modeByte = reader.uint8('mode');
  if (!SEAL_MODES.includes(modeByte)) throw new ProtocolError('MALFORMED', `unknown seal mode ${modeByte}`);
  const keyId = reader.bytes(KEY_ID_SIZE, 'key id').toString('hex');
  const signPublicKey = Buffer.from(reader.bytes(PUBLIC_KEY_SIZE, 'signing key'));
  const sealPublicKey = Buffer.from(reader.bytes(PUBLIC_KEY_SIZE, 'sealing key'));
  // The key id is a function of the two keys; one that lies could pass a pin check done by key id.
  if (keyId !== serverKeyId(signPublicKey, sealPublicKey))
    throw new ProtocolError('MALFORMED', `plug-in data key id ${keyId} does not match its keys`);
  const recipient = reader.bytes(FINGERPRINT_SIZE, 'recipient');
  const salt = reader.bytes(SALT_SIZE, 'salt');
  const nonce = reader.bytes(NONCE_SIZE, 'nonce');
  const publicKey = publicKeyFromRaw(signPublicKey, 'Ed25519');
  let sealedEnd = record.length - ED25519_SIGNATURE_SIZE;
  if (version === PLUGIN_VERSION_SINGLE) {
    if (!verify(null, signedBytes(record.subarray(0, sealedEnd)), publicKey, record.subarray(sealedEnd)))
      throw new ProtocolError('BAD_SIGNATURE', BAD_SIGNATURE_MESSAGE);
  } else {
    sealedEnd = verifyBatchSignature(record, {
      leafStart: 0,
      minLeafEnd: PLUGIN_HEADER_SIZE + TAG_SIZE,
      label: LABEL_PLUGIN_BATCH_SIGNATURE,
      publicKey,
      what: 'plug-in data',
      badSignature: BAD_SIGNATURE_MESSAGE,
    });
  }
  return {
    envelope: {
      version,
      mode: modeByte === (SealMode.Client as number) ? 'client' : 'anonymous',
      keyId,
      signPublicKey,
      sealPublicKey,
      recipient: modeByte === (SealMode.Client as number) ? recipient.toString('hex') : null,
    },
    header: record.subarray(0, PLUGIN_HEADER_SIZE),
    salt,
    nonce,
    sealed: record.subarray(PLUGIN_HEADER_SIZE, sealedEnd),
  };
}

/** Checks length, version and signature; returns the clear header (for the pin check before opening). */
export function readPluginEnvelope(record: Buffer): PluginEnvelope {
  return parseRecord(record).envelope;
}

/** Verifies and opens plug-in data. A client-sealed record needs the identity it was sealed to. */
export function openPluginData(record: Buffer, options: { identity?: ClientIdentity }): { envelope: PluginEnvelope; data: PluginData } {
  const parsed = parseRecord(record);
  const { envelope } = parsed;
  let ikm: Buffer;
  if (envelope.mode === 'client') {
    if (!options.identity || options.identity.fingerprint !== envelope.recipient) {
      throw new ProtocolError(
        'NOT_FOR_THIS_CLIENT',
        `plug-in data is sealed to client ${envelope.recipient?.slice(0, 16)}…, not to this one`,
      );
    }
    ikm = x25519(options.identity.privateKey, publicKeyFromRaw(envelope.sealPublicKey, 'X25519'));
  } else {
    ikm = envelope.sealPublicKey;
  }
  const payload = open(
    sealKeyFor(envelope.mode === 'client' ? SealMode.Client : SealMode.Anonymous, parsed.salt, ikm),
    parsed.nonce,
    parsed.sealed,
    parsed.header,
    'plug-in data',
  );
  return { envelope, data: decodePayload(payload) };
}
