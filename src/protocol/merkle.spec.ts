import { inclusionPathLength, leafHash, merkleTree, rootFromInclusionPath } from './merkle.js';
import { sha256 } from './testing/test-buffers.js';

// RFC 9162 2.1.1 and 2.1.3.1 written out as defined (recursion on the data, not on hashes), to check against.
function mth(data: Buffer[]): Buffer {
  if (data.length === 1) return sha256(Buffer.from([0]), data[0]);
  let k = 1;
  while (k * 2 < data.length) k *= 2;
  return sha256(Buffer.from([1]), mth(data.slice(0, k)), mth(data.slice(k)));
}
function referencePath(m: number, data: Buffer[]): Buffer[] {
  if (data.length === 1) return [];
  let k = 1;
  while (k * 2 < data.length) k *= 2;
  return m < k
    ? [...referencePath(m, data.slice(0, k)), mth(data.slice(k))]
    : [...referencePath(m - k, data.slice(k)), mth(data.slice(0, k))];
}

// The test vectors of the Certificate Transparency reference code: eight leaves, the root of each prefix.
const VECTOR_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const VECTOR_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

const leavesOf = (n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`leaf ${i}`));

describe('merkleTree', () => {
  it('gives the roots of the Certificate Transparency test vectors', () => {
    const data = VECTOR_LEAVES.map((hex) => Buffer.from(hex, 'hex'));
    for (let n = 1; n <= data.length; n++) {
      expect(merkleTree(data.slice(0, n).map(leafHash)).root.toString('hex')).toBe(VECTOR_ROOTS[n - 1]);
    }
  });

  it('gives the root and every inclusion path of RFC 9162, for every size up to 70', () => {
    for (let n = 1; n <= 70; n++) {
      const data = leavesOf(n);
      const { root, paths } = merkleTree(data.map(leafHash));
      expect(root.equals(mth(data))).toBe(true);
      paths.forEach((path, m) => expect(path.map((h) => h.toString('hex'))).toEqual(referencePath(m, data).map((h) => h.toString('hex'))));
    }
  });

  it('has paths as long as inclusionPathLength says, for every leaf of every size up to 70 and a full u16 tree', () => {
    for (let n = 1; n <= 70; n++) {
      const { paths } = merkleTree(leavesOf(n).map(leafHash));
      paths.forEach((path, m) => expect(inclusionPathLength(m, n)).toBe(path.length));
    }
    expect(inclusionPathLength(0, 65_535)).toBe(16);
    expect(inclusionPathLength(65_534, 65_535)).toBe(15);
  });

  it('needs at least one leaf', () => {
    expect(() => merkleTree([])).toThrow(RangeError);
  });
});

describe('rootFromInclusionPath', () => {
  it('leads every leaf of every size up to 70 to the root', () => {
    for (let n = 1; n <= 70; n++) {
      const hashes = leavesOf(n).map(leafHash);
      const { root, paths } = merkleTree(hashes);
      hashes.forEach((leaf, m) => expect(rootFromInclusionPath(leaf, m, n, paths[m])?.equals(root)).toBe(true));
    }
  });

  // Not another size: a left leaf's path leads to the same root in smaller trees (leaf 0 of 8 as of 5),
  // which is why a batch receipt's signature covers the tree size too (receipt.spec).
  it('does not lead to the root with another index, leaf or path', () => {
    for (const n of [2, 3, 5, 8, 13]) {
      const hashes = leavesOf(n).map(leafHash);
      const { root, paths } = merkleTree(hashes);
      hashes.forEach((leaf, m) => {
        const path = paths[m];
        const leads = (r: Buffer | null) => r !== null && r.equals(root);
        for (let other = 0; other < n + 2; other++) if (other !== m) expect(leads(rootFromInclusionPath(leaf, other, n, path))).toBe(false);
        expect(leads(rootFromInclusionPath(hashes[(m + 1) % n], m, n, path))).toBe(false);
        expect(leads(rootFromInclusionPath(leaf, m, n, [...path, root]))).toBe(false);
        expect(leads(rootFromInclusionPath(leaf, m, n, path.slice(1)))).toBe(false);
        const flipped = path.map((h) => Buffer.from(h));
        flipped[0][0] ^= 1;
        expect(leads(rootFromInclusionPath(leaf, m, n, flipped))).toBe(false);
      });
    }
  });

  it('refuses an index outside the tree', () => {
    expect(rootFromInclusionPath(leafHash(Buffer.from('x')), 1, 1, [])).toBeNull();
    expect(rootFromInclusionPath(leafHash(Buffer.from('x')), 0, 1, [])).not.toBeNull();
  });
});
