import { createPublicKey, sign, verify } from 'node:crypto';
import { generateServerKeySet } from './keys.js';
import { leafHash, merkleTree } from './merkle.js';
import { ReceiptFields, signReceipt, signReceipts, verifyReceipt } from './receipt.js';
import { refusal } from './testing/test-buffers.js';
import { DELIVERY_ID, DIGEST, FINGERPRINT, ISSUED, SERVER } from './testing/worked-example.js';

const FIELDS: ReceiptFields = {
  keyId: SERVER.keyId,
  deliveryId: DELIVERY_ID,
  clientFingerprint: FINGERPRINT,
  requesterAddress: '192.0.2.10',
  issuedAt: new Date(ISSUED),
  sentAt: new Date(ISSUED + 1500),
  confirmedAt: new Date(ISSUED + 2250),
  files: [{ name: 'hello.txt', size: 11, sha256: DIGEST }],
};
// docs/PROTOCOL.md, worked example: the receipt, field by field.
const RECEIPT = Buffer.from(
  [
    '000000d5', // total length 213, signature included
    '01', // version
    'c1f978d18794bc8d', // key id
    '0f1e2d3c4b5a49788796a5b4c3d2e1f0', // delivery id
    FINGERPRINT,
    '0a' + Buffer.from('192.0.2.10').toString('hex'), // requester address, u8 length
    '000001a19b7ca680', // issued at, ms
    '000001a19b7cac5c', // sent at, ms
    '000001a19b7caf4a', // confirmed at, ms
    '0001', // file count
    '0009' + Buffer.from('hello.txt').toString('hex'),
    '000000000000000b', // size 11
    DIGEST,
    // Ed25519("dcx/1 receipt signature" || the 149 bytes above)
    'db3aa96ce8b7ed08354d75277eb75ff2193b5aee94354c765e855eeebc928cb369115d181ca92845129ec30a21a1826c902d01096db51532bc91515849786c02',
  ].join(''),
  'hex',
);

/** Reference: sign any unsigned body the way the spec says (patching the total length first). */
function signByHand(unsignedWithoutLength: Buffer, keys = SERVER, label = 'dcx/1 receipt signature'): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(4 + unsignedWithoutLength.length + 64);
  const unsigned = Buffer.concat([length, unsignedWithoutLength]);
  return Buffer.concat([unsigned, sign(null, Buffer.concat([Buffer.from(label), unsigned]), keys.signPrivateKey)]);
}

/** The example receipt with its address field replaced by other raw bytes, re-signed. */
function withAddress(address: Buffer): Buffer {
  const body = RECEIPT.subarray(4, RECEIPT.length - 64);
  const at = 1 + 8 + 16 + 32;
  return signByHand(Buffer.concat([body.subarray(0, at), Buffer.from([address.length]), address, body.subarray(at + 1 + 10)]));
}

/** Each byte flipped in turn: the length says TRUNCATED or MALFORMED, the version UNSUPPORTED_VERSION, any other byte BAD_SIGNATURE. */
function expectTamperingRefused(receipt: Buffer): void {
  for (let position = 0; position < receipt.length; position++) {
    const tampered = Buffer.from(receipt);
    tampered[position] ^= 0x01;
    const code = refusal(() => verifyReceipt(tampered, SERVER.signPublicKey)).code;
    if (position < 4) expect(['TRUNCATED', 'MALFORMED']).toContain(code);
    else if (position === 4) expect(code).toBe('UNSUPPORTED_VERSION');
    else expect(code).toBe('BAD_SIGNATURE');
  }
}

function expectTruncationRefused(receipt: Buffer): void {
  for (let length = 0; length < receipt.length; length++) {
    expect(refusal(() => verifyReceipt(receipt.subarray(0, length), SERVER.signPublicKey)).code).toBe('TRUNCATED');
  }
}

describe('signReceipt', () => {
  it('writes the example receipt byte for byte (Ed25519 is deterministic)', () => {
    expect(signReceipt(FIELDS, SERVER).toString('hex')).toBe(RECEIPT.toString('hex'));
  });

  it('signs with the domain label in front (reference signature over the same bytes matches)', () => {
    expect(signByHand(RECEIPT.subarray(4, RECEIPT.length - 64)).equals(RECEIPT)).toBe(true);
  });

  it('writes zeros for no fingerprint and 0 for no sent time, and reads them back as null', () => {
    const receipt = signReceipt({ ...FIELDS, clientFingerprint: null, sentAt: null }, SERVER);
    expect(receipt.subarray(29, 61).equals(Buffer.alloc(32))).toBe(true);
    expect(receipt.readBigUInt64BE(61 + 11 + 8)).toBe(0n);
    const back = verifyReceipt(receipt, SERVER.signPublicKey);
    expect(back.clientFingerprint).toBeNull();
    expect(back.sentAt).toBeNull();
  });

  it('refuses a file name over 1024 bytes: TOO_LARGE', () => {
    const files = [{ name: 'x'.repeat(1025), size: 1, sha256: DIGEST }];
    expect(refusal(() => signReceipt({ ...FIELDS, files }, SERVER)).code).toBe('TOO_LARGE');
  });

  it('refuses an address over 255 bytes: TOO_LARGE', () => {
    expect(refusal(() => signReceipt({ ...FIELDS, requesterAddress: 'a'.repeat(256) }, SERVER)).code).toBe('TOO_LARGE');
  });
});

describe('verifyReceipt', () => {
  it('reads the example receipt', () => {
    expect(verifyReceipt(RECEIPT, SERVER.signPublicKey)).toEqual(FIELDS);
  });

  it('round-trips several files with multi-byte names', () => {
    const files = [
      { name: 'Grüße.pdf', size: 0, sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
      { name: '映像.mp4', size: 2 ** 40, sha256: DIGEST },
    ];
    expect(verifyReceipt(signReceipt({ ...FIELDS, files }, SERVER), SERVER.signPublicKey).files).toEqual(files);
  });

  it('refuses a receipt signed by another server key: BAD_SIGNATURE', () => {
    const other = generateServerKeySet();
    expect(refusal(() => verifyReceipt(signReceipt(FIELDS, other), SERVER.signPublicKey)).code).toBe('BAD_SIGNATURE');
    expect(refusal(() => verifyReceipt(RECEIPT, other.signPublicKey)).code).toBe('BAD_SIGNATURE');
  });

  it('refuses a signature made without the label: BAD_SIGNATURE', () => {
    const unsigned = RECEIPT.subarray(0, RECEIPT.length - 64);
    const bare = Buffer.concat([unsigned, sign(null, unsigned, SERVER.signPrivateKey)]);
    expect(refusal(() => verifyReceipt(bare, SERVER.signPublicKey)).code).toBe('BAD_SIGNATURE');
  });

  it('refuses every single tampered byte', () => expectTamperingRefused(RECEIPT));

  it('refuses every truncation', () => expectTruncationRefused(RECEIPT));

  it('refuses bytes appended after the signature: MALFORMED', () => {
    expect(refusal(() => verifyReceipt(Buffer.concat([RECEIPT, Buffer.from([0])]), SERVER.signPublicKey)).code).toBe('MALFORMED');
  });

  it('refuses signed trailing bytes after the last field: MALFORMED', () => {
    const padded = signByHand(Buffer.concat([RECEIPT.subarray(4, RECEIPT.length - 64), Buffer.from([0])]));
    expect(refusal(() => verifyReceipt(padded, SERVER.signPublicKey)).code).toBe('MALFORMED');
  });

  it('refuses a signed address that is not UTF-8: MALFORMED', () => {
    expect(verifyReceipt(withAddress(Buffer.from('10.0.0.1')), SERVER.signPublicKey).requesterAddress).toBe('10.0.0.1');
    expect(refusal(() => verifyReceipt(withAddress(Buffer.from([0x31, 0xc3, 0x28])), SERVER.signPublicKey)).code).toBe('MALFORMED');
  });

  it('refuses a signed file name over 1024 bytes: TOO_LARGE', () => {
    const body = RECEIPT.subarray(4, RECEIPT.length - 64);
    const filesAt = 1 + 8 + 16 + 32 + 11 + 24 + 2;
    const name = Buffer.alloc(2 + 1025, 0x61);
    name.writeUInt16BE(1025);
    const receipt = signByHand(Buffer.concat([body.subarray(0, filesAt), name, body.subarray(filesAt + 2 + 9)]));
    expect(refusal(() => verifyReceipt(receipt, SERVER.signPublicKey)).code).toBe('TOO_LARGE');
  });

  it('refuses a signed file count over 1024: TOO_LARGE', () => {
    const body = Buffer.from(RECEIPT.subarray(4, RECEIPT.length - 64));
    body.writeUInt16BE(1025, 1 + 8 + 16 + 32 + 11 + 24);
    expect(refusal(() => verifyReceipt(signByHand(body), SERVER.signPublicKey)).code).toBe('TOO_LARGE');
  });
});

describe('signReceipts (one signature for a batch)', () => {
  const batchOf = (n: number): ReceiptFields[] =>
    Array.from({ length: n }, (_, i) => ({
      ...FIELDS,
      deliveryId: `0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1${(i % 256).toString(16).padStart(2, '0')}`,
      confirmedAt: new Date(ISSUED + 2250 + i),
    }));
  /** The parts of a batch receipt, read from its end as section 5 lays them out. */
  const partsOf = (receipt: Buffer) => {
    const trailerAt = receipt.length - 64 - 5;
    const pathLength = receipt[trailerAt];
    return {
      statement: receipt.subarray(4, trailerAt - 32 * pathLength - 16),
      salt: receipt.subarray(trailerAt - 32 * pathLength - 16, trailerAt - 32 * pathLength),
      path: receipt.subarray(trailerAt - 32 * pathLength, trailerAt),
      pathLength,
      index: receipt.readUInt16BE(trailerAt + 1),
      size: receipt.readUInt16BE(trailerAt + 3),
      signature: receipt.subarray(receipt.length - 64),
    };
  };

  it('signs a lone receipt on its own: the version 1 receipt, byte for byte', () => {
    expect(signReceipts([FIELDS], SERVER).map((r) => r.toString('hex'))).toEqual([RECEIPT.toString('hex')]);
    expect(signReceipts([], SERVER)).toEqual([]);
  });

  it('gives every receipt of a batch its own fields back, for sizes 2 to 40', () => {
    for (let n = 2; n <= 40; n++) {
      const batch = batchOf(n);
      const receipts = signReceipts(batch, SERVER);
      receipts.forEach((receipt, i) => {
        expect(receipt[4]).toBe(2);
        expect(receipt.readUInt32BE(0)).toBe(receipt.length);
        expect(verifyReceipt(receipt, SERVER.signPublicKey)).toEqual(batch[i]);
        expect(partsOf(receipt)).toMatchObject({ index: i, size: n });
      });
    }
  });

  it('signs, once, the label, the tree size and the Merkle root of the salted statements (reference check)', () => {
    const receipts = signReceipts(batchOf(5), SERVER);
    const parts = receipts.map(partsOf);
    expect(new Set(parts.map(({ salt }) => salt.toString('hex'))).size).toBe(5);
    const { root, paths } = merkleTree(parts.map(({ statement, salt }) => leafHash(Buffer.concat([statement, salt]))));
    const size = Buffer.from([0x00, 0x05]);
    for (const [i, { signature, path, statement }] of parts.entries()) {
      expect(signature.equals(parts[0].signature)).toBe(true);
      expect(path.equals(Buffer.concat(paths[i]))).toBe(true);
      // The statement is that of the lone receipt with version 2.
      expect(statement.equals(Buffer.from(signReceipt(batchOf(5)[i], SERVER).subarray(4, -64)).fill(2, 0, 1))).toBe(true);
      expect(
        verify(
          null,
          Buffer.concat([Buffer.from('dcx/1 receipt batch signature'), size, root]),
          createPublicKey(SERVER.signPrivateKey),
          signature,
        ),
      ).toBe(true);
    }
  });

  it('refuses every single tampered byte and every truncation of a batch receipt', () => {
    const receipt = signReceipts(batchOf(6), SERVER)[3];
    expectTamperingRefused(receipt);
    expectTruncationRefused(receipt);
  });

  it(
    'refuses a batch receipt cut short with its length field rewritten to match: TRUNCATED while no proof fits after the ' +
      'fields up to the delivery id and the salt',
    () => {
      const receipt = signReceipts(batchOf(6), SERVER)[3];
      const proofFits = 4 + 1 + 8 + 16 + 16 + 5 + 64;
      for (let length = 4 + 1 + 8 + 16 + 64; length < receipt.length; length++) {
        const shortened = Buffer.from(receipt.subarray(0, length));
        shortened.writeUInt32BE(length);
        const error = refusal(() => verifyReceipt(shortened, SERVER.signPublicKey));
        if (length < proofFits)
          expect([error.code, error.message]).toEqual(['TRUNCATED', `batch receipt of ${length} bytes is too short for a batch signature`]);
        else expect(['TRUNCATED', 'MALFORMED', 'BAD_SIGNATURE']).toContain(error.code);
      }
    },
  );

  it('refuses a statement with the proof of another receipt of the batch, a changed tree size or index: BAD_SIGNATURE', () => {
    const receipts = signReceipts(batchOf(8), SERVER);
    const [a, b] = [partsOf(receipts[0]), receipts[1]];
    // b's statement with the first receipt's salt, path and signature.
    const swapped = Buffer.concat([b.subarray(0, 4 + a.statement.length), receipts[0].subarray(4 + a.statement.length)]);
    swapped.writeUInt32BE(swapped.length);
    expect(refusal(() => verifyReceipt(swapped, SERVER.signPublicKey)).code).toBe('BAD_SIGNATURE');
    for (const [offset, value] of [
      [-64 - 2, 5],
      [-64 - 4, 1],
    ] as const) {
      const changed = Buffer.from(receipts[0]);
      changed.writeUInt16BE(value, changed.length + offset);
      expect(refusal(() => verifyReceipt(changed, SERVER.signPublicKey)).code).toBe('BAD_SIGNATURE');
    }
  });

  it('refuses an inclusion path of more than 16 hashes: MALFORMED; one longer than the receipt: TRUNCATED', () => {
    const receipt = Buffer.from(signReceipts(batchOf(2), SERVER)[0]);
    receipt[receipt.length - 64 - 5] = 17;
    expect(refusal(() => verifyReceipt(receipt, SERVER.signPublicKey)).code).toBe('MALFORMED');
    receipt[receipt.length - 64 - 5] = 16;
    expect(refusal(() => verifyReceipt(receipt, SERVER.signPublicKey)).code).toBe('TRUNCATED');
  });
});
