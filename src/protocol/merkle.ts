import { createHash } from 'node:crypto';

/*
 * The Merkle tree hash and inclusion paths of RFC 9162 (Certificate Transparency 2.0) section 2.1, over
 * SHA-256: many records (receipts, plug-in data) share one signature over the tree's root, and each
 * carries the path that leads from its own hash to that root (batch-signature.ts).
 */

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** The hash of a leaf: SHA-256(0x00 ‖ data). */
export function leafHash(data: Buffer): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest();
}

function nodeHash(left: Buffer, right: Buffer): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

/** The largest power of two below n (n >= 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** How many hashes the inclusion path of leaf `index` of a tree of `size` leaves holds (its depth). */
export function inclusionPathLength(index: number, size: number): number {
  let length = 0;
  for (let lo = 0, hi = size; hi - lo > 1; length++) {
    const middle = lo + split(hi - lo);
    if (index < middle) hi = middle;
    else lo = middle;
  }
  return length;
}

/** The tree of `leafHashes` (at least one): its root, and each leaf's inclusion path, the leaf's sibling first. */
export function merkleTree(leafHashes: Buffer[]): { root: Buffer; paths: Buffer[][] } {
  if (leafHashes.length === 0) throw new RangeError('a Merkle tree needs at least one leaf');
  const paths: Buffer[][] = leafHashes.map(() => []);
  // MTH(D[lo:hi]); every leaf below one half gets the other half's hash, deepest level first.
  const subtree = (lo: number, hi: number): Buffer => {
    if (hi - lo === 1) return leafHashes[lo];
    const middle = lo + split(hi - lo);
    const left = subtree(lo, middle);
    const right = subtree(middle, hi);
    for (let i = lo; i < middle; i++) paths[i].push(right);
    for (let i = middle; i < hi; i++) paths[i].push(left);
    return nodeHash(left, right);
  };
  return { root: subtree(0, leafHashes.length), paths };
}

/**
 * The root that `path` leads to from the leaf at `index` of a tree of `size` leaves (RFC 9162
 * 2.1.3.2), or null when the path cannot belong to such a leaf (wrong length, index out of range).
 */
export function rootFromInclusionPath(leaf: Buffer, index: number, size: number, path: Buffer[]): Buffer | null {
  if (index >= size) return null;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn === 0 ? r : null;
}
