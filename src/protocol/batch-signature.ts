import { KeyObject, sign, verify } from 'node:crypto';
import { BufferWriter } from './buffer-writer.js';
import { BATCH_PROOF_SIZE, MAX_BATCH_SIZE, MAX_INCLUSION_PATH, SHA256_SIZE, ED25519_SIGNATURE_SIZE } from './constants.js';
import { ProtocolError } from './errors.js';
import { inclusionPathLength, leafHash, merkleTree, rootFromInclusionPath } from './merkle.js';

/*
 * One Ed25519 signature for a batch of records (receipts, plug-in data; docs/PROTOCOL.md sections 3
 * and 5). The records' leaves are the leaves of an RFC 9162 Merkle tree; the signature covers a label,
 * the tree size and the root. Each record ends with its trailer, read from the end so that a reader
 * checks the signature before it decodes a single field:
 *
 *   inclusion path (p hashes, the leaf's sibling first) ‖ p u8 ‖ leaf index u16 ‖ tree size u16 ‖ signature
 *
 * The tree size is signed because a path alone does not fix it: the path of a leaf in the left half of
 * a tree of 8 also leads to that tree's root when checked as if the tree had 5 leaves.
 */

function signedRoot(label: string, size: number, root: Buffer): Buffer {
  return new BufferWriter(Buffer.byteLength(label) + 2 + SHA256_SIZE)
    .addBytes(Buffer.from(label))
    .addUInt16(size)
    .addFixed(root, SHA256_SIZE)
    .flush();
}

function trailerSize(pathLength: number): number {
  return pathLength * SHA256_SIZE + BATCH_PROOF_SIZE + ED25519_SIGNATURE_SIZE;
}

/** The trailer length of leaf `index` of a batch of `size`: known before the leaves, for records that state their own length. */
export function batchTrailerSize(index: number, size: number): number {
  return trailerSize(inclusionPathLength(index, size));
}

/** Signs the leaves of a batch (at least 2) with one signature; returns each leaf's trailer, in order. */
export function signBatch(leaves: Buffer[], label: string, privateKey: KeyObject): Buffer[] {
  if (leaves.length < 2 || leaves.length > MAX_BATCH_SIZE)
    throw new RangeError(`a batch signs 2 to ${MAX_BATCH_SIZE} records, not ${leaves.length}`);
  const { root, paths } = merkleTree(leaves.map(leafHash));
  const signature = sign(null, signedRoot(label, leaves.length, root), privateKey);
  return paths.map((path, index) => {
    const writer = new BufferWriter(trailerSize(path.length));
    for (const hash of path) writer.addFixed(hash, SHA256_SIZE);
    return writer.addUInt8(path.length).addUInt16(index).addUInt16(leaves.length).addFixed(signature, ED25519_SIGNATURE_SIZE).flush();
  });
}

interface BatchCheck {
  /** Where the leaf starts in the record (after a length field that is not part of it, say). */
  leafStart: number;
  /** The shortest leaf end the record's format allows: a trailer that leaves less is TRUNCATED. */
  minLeafEnd: number;
  label: string;
  publicKey: KeyObject;
  /** The record's name in messages. */
  what: string;
  /** The BAD_SIGNATURE message. */
  badSignature: string;
}

/**
 * Checks the batch signature at the end of `record` (its length checked by the caller); returns
 * where its leaf ends. A path over 16 hashes is MALFORMED, a trailer longer than the record allows is
 * TRUNCATED; an index outside the tree or a path that does not fit it leads to no root: BAD_SIGNATURE.
 */
export function verifyBatchSignature(record: Buffer, check: BatchCheck): number {
  const signatureAt = record.length - ED25519_SIGNATURE_SIZE;
  const proofAt = signatureAt - BATCH_PROOF_SIZE;
  if (proofAt < check.minLeafEnd)
    throw new ProtocolError('TRUNCATED', `${check.what} of ${record.length} bytes is too short for a batch signature`);
  const pathLength = record.readUInt8(proofAt);
  const index = record.readUInt16BE(proofAt + 1);
  const size = record.readUInt16BE(proofAt + 3);
  if (pathLength > MAX_INCLUSION_PATH)
    throw new ProtocolError('MALFORMED', `${check.what} inclusion path of ${pathLength} hashes (at most ${MAX_INCLUSION_PATH})`);
  const leafEnd = proofAt - pathLength * SHA256_SIZE;
  if (leafEnd < check.minLeafEnd)
    throw new ProtocolError(
      'TRUNCATED',
      `${check.what} of ${record.length} bytes is too short for its inclusion path of ${pathLength} hashes`,
    );
  const path = Array.from({ length: pathLength }, (_, i) => record.subarray(leafEnd + i * SHA256_SIZE, leafEnd + (i + 1) * SHA256_SIZE));
  const root = rootFromInclusionPath(leafHash(record.subarray(check.leafStart, leafEnd)), index, size, path);
  if (root === null || !verify(null, signedRoot(check.label, size, root), check.publicKey, record.subarray(signatureAt))) {
    throw new ProtocolError('BAD_SIGNATURE', check.badSignature);
  }
  return leafEnd;
}
