import { createCipheriv, createDecipheriv, createPublicKey, diffieHellman, hkdfSync, KeyObject, sign, verify } from 'node:crypto';
import { ClientIdentity, generateClientIdentity, generateServerKeySet, ServerKeySet } from './keys.js';
import { leafHash, merkleTree } from './merkle.js';
import {
  clientSealSecret,
  openPluginData,
  PluginData,
  PluginSealRequest,
  readPluginEnvelope,
  sealPluginData,
  sealPluginDataBatch,
} from './plugin-data.js';
import { refusal, sha256 } from './testing/test-buffers.js';
import { DIGEST, ISSUED, NONCE, pkcs8, SERVER } from './testing/worked-example.js';

const ALICE: ClientIdentity = {
  publicKey: Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex'),
  privateKey: pkcs8('6e', '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'),
  fingerprint: '300c9c9603b92a4b39ed3958bf9240114804db4fd373012c0ca47432d63425ae',
};
const SALT = Buffer.from('b0b1b2b3b4b5b6b7b8b9babbbcbdbebf', 'hex');

const DATA: PluginData = {
  deliveryId: '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0',
  client: { fingerprint: ALICE.fingerprint, address: '192.0.2.10' },
  server: { host: 'dcx.example.org', confirmPort: 7411, url: 'https://dcx.example.org' },
  confirmSecret: Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex'),
  files: [{ name: 'hello.txt', size: 11, sha256: DIGEST }],
  issuedAt: new Date(ISSUED),
  expiresAt: new Date(ISSUED + 86_400_000),
};

// docs/PROTOCOL.md, worked example: the 138-byte clear header of the record sealed to Alice.
const EXAMPLE_HEADER =
  '000001a6' + // total length 422
  '01' + // version
  '02' + // mode: client
  'c1f978d18794bc8d' + // key id
  'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a' + // Ed25519 sign public key
  'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f' + // X25519 seal public key
  '300c9c9603b92a4b39ed3958bf9240114804db4fd373012c0ca47432d63425ae' + // recipient fingerprint
  'b0b1b2b3b4b5b6b7b8b9babbbcbdbebf' + // salt
  'a0a1a2a3a4a5a6a7a8a9aaab'; // nonce
// Its first and last bytes after the header (sealed payload + tag, then signature), as in the doc.
const EXAMPLE_SEALED_START = 'eaaab8bcdec2f62746e8d1f61b5a71ec';
const EXAMPLE_SIGNATURE =
  '1ae63182a534423d37aa9b7f69e4a89f1329b2cb65de3b2e8ee2816de18ebfaa348f30a66096b54cea3b97820081bbbc09b772f38c052b09ee0d01b8ee374d06';

// ---- Reference implementation, straight from the layout (Buffer writes and node:crypto only) ----

const u8 = (v: number) => Buffer.from([v]);
const u16 = (v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
};
const u64 = (v: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
};
const str8 = (s: string) => Buffer.concat([u8(Buffer.byteLength(s)), Buffer.from(s)]);
const str16 = (s: string | Buffer) => {
  const bytes = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([u16(bytes.length), bytes]);
};

function payloadBytes(data: PluginData, overrides: { host?: Buffer; fileCount?: number; trailing?: Buffer } = {}): Buffer {
  return Buffer.concat([
    Buffer.from(data.deliveryId.replaceAll('-', ''), 'hex'),
    data.client.fingerprint ? Buffer.from(data.client.fingerprint, 'hex') : Buffer.alloc(32),
    str8(data.client.address),
    str16(overrides.host ?? data.server.host),
    u16(data.server.confirmPort),
    str16(data.server.url),
    data.confirmSecret,
    u64(data.issuedAt.getTime()),
    u64(data.expiresAt.getTime()),
    u16(overrides.fileCount ?? data.files.length),
    ...data.files.map((f) => Buffer.concat([str16(f.name), u64(f.size), Buffer.from(f.sha256, 'hex')])),
    overrides.trailing ?? Buffer.alloc(0),
  ]);
}

interface RecordSpec {
  payload: Buffer;
  keys?: ServerKeySet;
  /** null: anonymous mode */
  clientPublicKey: Buffer | null;
  salt?: Buffer;
  nonce?: Buffer;
  keyId?: string;
  recipient?: Buffer;
  signWith?: KeyObject;
}

function recordBytes(spec: RecordSpec): Buffer {
  const keys = spec.keys ?? SERVER;
  const salt = spec.salt ?? SALT;
  const nonce = spec.nonce ?? NONCE;
  const client = spec.clientPublicKey;
  const header = Buffer.alloc(138);
  header.writeUInt32BE(138 + spec.payload.length + 16 + 64, 0);
  header.writeUInt8(1, 4);
  header.writeUInt8(client ? 2 : 1, 5);
  Buffer.from(spec.keyId ?? sha256(keys.signPublicKey, keys.sealPublicKey).subarray(0, 8).toString('hex'), 'hex').copy(header, 6);
  keys.signPublicKey.copy(header, 14);
  keys.sealPublicKey.copy(header, 46);
  (spec.recipient ?? (client ? sha256(client) : Buffer.alloc(32))).copy(header, 78);
  salt.copy(header, 110);
  nonce.copy(header, 126);
  const ikm = client
    ? diffieHellman({
        privateKey: keys.sealPrivateKey,
        publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: client.toString('base64url') }, format: 'jwk' }),
      })
    : keys.sealPublicKey;
  const key = Buffer.from(hkdfSync('sha256', ikm, salt, client ? 'dcx/1 plug-in data, client seal' : 'dcx/1 plug-in data, bundle key', 32));
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(header);
  const unsigned = Buffer.concat([header, cipher.update(spec.payload), cipher.final(), cipher.getAuthTag()]);
  return Buffer.concat([
    unsigned,
    sign(null, Buffer.concat([Buffer.from('dcx/1 plug-in data signature'), unsigned]), spec.signWith ?? keys.signPrivateKey),
  ]);
}

const EXAMPLE = recordBytes({ payload: payloadBytes(DATA), clientPublicKey: ALICE.publicKey });
const ANONYMOUS_DATA: PluginData = { ...DATA, client: { fingerprint: null, address: '198.51.100.7' } };
const ANONYMOUS = recordBytes({ payload: payloadBytes(ANONYMOUS_DATA), clientPublicKey: null });

/** The record with the bytes at `at` replaced, re-signed with the server key: a server-side forgery. */
function patchedAndResigned(record: Buffer, at: number, bytes: Buffer, signWith = SERVER.signPrivateKey): Buffer {
  const unsigned = Buffer.from(record.subarray(0, record.length - 64));
  bytes.copy(unsigned, at);
  return Buffer.concat([unsigned, sign(null, Buffer.concat([Buffer.from('dcx/1 plug-in data signature'), unsigned]), signWith)]);
}

// ---- Tests ----

describe('the worked example of docs/PROTOCOL.md', () => {
  it('has the documented header, sealed-part start and signature', () => {
    expect(EXAMPLE.length).toBe(422);
    expect(EXAMPLE.subarray(0, 138).toString('hex')).toBe(EXAMPLE_HEADER);
    expect(EXAMPLE.subarray(138, 154).toString('hex')).toBe(EXAMPLE_SEALED_START);
    expect(EXAMPLE.subarray(422 - 64).toString('hex')).toBe(EXAMPLE_SIGNATURE);
    expect(payloadBytes(DATA).length).toBe(204);
  });

  it('opens with Alice to exactly the plug-in data', () => {
    const { envelope, data } = openPluginData(EXAMPLE, { identity: ALICE });
    expect(data).toEqual(DATA);
    expect(envelope).toEqual({
      version: 1,
      mode: 'client',
      keyId: SERVER.keyId,
      signPublicKey: SERVER.signPublicKey,
      sealPublicKey: SERVER.sealPublicKey,
      recipient: ALICE.fingerprint,
    });
  });

  it('has the key id SHA-256(sign || seal)[0..8] and the fingerprint SHA-256(raw X25519 key)', () => {
    expect(sha256(SERVER.signPublicKey, SERVER.sealPublicKey).subarray(0, 8).toString('hex')).toBe(SERVER.keyId);
    expect(sha256(ALICE.publicKey).toString('hex')).toBe(ALICE.fingerprint);
  });
});

describe('sealPluginData', () => {
  it('writes exactly the reference bytes in client mode (salt and nonce taken from its output)', () => {
    const record = sealPluginData(DATA, SERVER, ALICE.publicKey);
    const salt = record.subarray(110, 126);
    const nonce = record.subarray(126, 138);
    expect(salt.equals(SALT)).toBe(false);
    expect(record.toString('hex')).toBe(
      recordBytes({ payload: payloadBytes(DATA), clientPublicKey: ALICE.publicKey, salt, nonce }).toString('hex'),
    );
  });

  it('writes exactly the reference bytes in anonymous mode', () => {
    const record = sealPluginData(ANONYMOUS_DATA, SERVER, null);
    const salt = record.subarray(110, 126);
    const nonce = record.subarray(126, 138);
    expect(record[5]).toBe(1);
    expect(record.subarray(78, 110).equals(Buffer.alloc(32))).toBe(true);
    expect(record.toString('hex')).toBe(
      recordBytes({ payload: payloadBytes(ANONYMOUS_DATA), clientPublicKey: null, salt, nonce }).toString('hex'),
    );
  });

  it('round-trips client-sealed data to identical PluginData', () => {
    const client = generateClientIdentity();
    const data: PluginData = { ...DATA, client: { fingerprint: client.fingerprint, address: '2001:db8::1' } };
    expect(openPluginData(sealPluginData(data, SERVER, client.publicKey), { identity: client }).data).toEqual(data);
  });

  it('round-trips anonymous data to identical PluginData, with or without an identity', () => {
    const record = sealPluginData(ANONYMOUS_DATA, SERVER, null);
    expect(openPluginData(record, {}).data).toEqual(ANONYMOUS_DATA);
    expect(openPluginData(record, { identity: ALICE }).data).toEqual(ANONYMOUS_DATA);
    expect(readPluginEnvelope(record).recipient).toBeNull();
  });

  it('round-trips many files, empty and multi-byte names, sizes up to 2^53 - 1', () => {
    const files = [
      { name: '', size: 0, sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
      { name: 'Grüße/映像 🎬.mp4', size: Number.MAX_SAFE_INTEGER, sha256: DIGEST },
      ...Array.from({ length: 50 }, (_, i) => ({ name: `part-${i}.bin`, size: i * 1_000_003, sha256: DIGEST })),
    ];
    const data = { ...DATA, files };
    expect(openPluginData(sealPluginData(data, SERVER, ALICE.publicKey), { identity: ALICE }).data).toEqual(data);
  });

  it('takes the X25519 secret from the source it is given, asked for these keys and this client key', () => {
    const asked: [string, string][] = [];
    const kept = clientSealSecret(SERVER, ALICE.publicKey);
    const record = sealPluginData(DATA, SERVER, ALICE.publicKey, (keys, key) => (asked.push([keys.keyId, key.toString('hex')]), kept));
    expect(asked).toEqual([[SERVER.keyId, ALICE.publicKey.toString('hex')]]);
    expect(openPluginData(record, { identity: ALICE }).data).toEqual(DATA);
    const wrong = sealPluginData(DATA, SERVER, ALICE.publicKey, () => clientSealSecret(SERVER, generateClientIdentity().publicKey));
    expect(refusal(() => openPluginData(wrong, { identity: ALICE })).code).toBe('SEAL_INVALID');
  });

  it('uses a fresh salt and nonce for every record', () => {
    const a = sealPluginData(DATA, SERVER, ALICE.publicKey);
    const b = sealPluginData(DATA, SERVER, ALICE.publicKey);
    expect(a.subarray(110, 138).equals(b.subarray(110, 138))).toBe(false);
  });

  it('refuses strings over their limits: TOO_LARGE', () => {
    expect(refusal(() => sealPluginData({ ...DATA, server: { ...DATA.server, host: 'h'.repeat(1025) } }, SERVER, null)).code).toBe(
      'TOO_LARGE',
    );
    expect(refusal(() => sealPluginData({ ...DATA, server: { ...DATA.server, url: 'u'.repeat(1025) } }, SERVER, null)).code).toBe(
      'TOO_LARGE',
    );
    expect(refusal(() => sealPluginData({ ...DATA, client: { ...DATA.client, address: 'a'.repeat(256) } }, SERVER, null)).code).toBe(
      'TOO_LARGE',
    );
    const longName = [{ name: 'n'.repeat(1025), size: 1, sha256: DIGEST }];
    expect(refusal(() => sealPluginData({ ...DATA, files: longName }, SERVER, null)).code).toBe('TOO_LARGE');
  });

  it('refuses more than 1024 files, and a record over 64 KiB: TOO_LARGE', () => {
    const file = { name: 'f', size: 1, sha256: DIGEST };
    expect(refusal(() => sealPluginData({ ...DATA, files: Array.from({ length: 1025 }, () => file) }, SERVER, null)).code).toBe(
      'TOO_LARGE',
    );
    const big = Array.from({ length: 70 }, (_, i) => ({ name: `${i}`.padEnd(1000, 'x'), size: 1, sha256: DIGEST }));
    expect(refusal(() => sealPluginData({ ...DATA, files: big }, SERVER, null)).code).toBe('TOO_LARGE');
  });

  it('refuses a low-order client key with a ProtocolError, not a bare OpenSSL error', () => {
    expect(refusal(() => sealPluginData(DATA, SERVER, Buffer.alloc(32))).code).toBe('MALFORMED');
  });
});

describe('readPluginEnvelope and the pinned key', () => {
  it('gives the signing key, so a record signed by another server key set is told apart from the pin', () => {
    const other = generateServerKeySet();
    const record = sealPluginData(DATA, other, ALICE.publicKey);
    const envelope = readPluginEnvelope(record); // self-consistent: it verifies under its own key...
    expect(envelope.signPublicKey.equals(other.signPublicKey)).toBe(true);
    expect(envelope.signPublicKey.equals(SERVER.signPublicKey)).toBe(false); // ...but not the pinned one
    expect(envelope.keyId).not.toBe(SERVER.keyId);
  });

  it('refuses a record that names the pinned signing key but was signed by another: BAD_SIGNATURE', () => {
    const impostor = generateServerKeySet();
    expect(
      refusal(() =>
        readPluginEnvelope(
          recordBytes({ payload: payloadBytes(DATA), clientPublicKey: ALICE.publicKey, signWith: impostor.signPrivateKey }),
        ),
      ).code,
    ).toBe('BAD_SIGNATURE');
  });

  it('refuses a record whose key id is not the hash of its keys (the pinned id with other keys): MALFORMED', () => {
    const impostor = generateServerKeySet();
    const forged = recordBytes({ payload: payloadBytes(DATA), clientPublicKey: ALICE.publicKey, keys: impostor, keyId: SERVER.keyId });
    expect(refusal(() => readPluginEnvelope(forged)).code).toBe('MALFORMED');
  });
});

describe('openPluginData refusals', () => {
  it('refuses a client-sealed record opened by another identity: NOT_FOR_THIS_CLIENT', () => {
    expect(refusal(() => openPluginData(EXAMPLE, { identity: generateClientIdentity() })).code).toBe('NOT_FOR_THIS_CLIENT');
    expect(refusal(() => openPluginData(EXAMPLE, {})).code).toBe('NOT_FOR_THIS_CLIENT');
  });

  it('refuses a record whose recipient field was forged in transit: BAD_SIGNATURE', () => {
    const mallory = generateClientIdentity();
    const forged = Buffer.from(EXAMPLE);
    Buffer.from(mallory.fingerprint, 'hex').copy(forged, 78);
    expect(refusal(() => openPluginData(forged, { identity: mallory })).code).toBe('BAD_SIGNATURE');
  });

  it('refuses a record whose recipient was rewritten and re-signed (even by the server key): SEAL_INVALID', () => {
    const mallory = generateClientIdentity();
    const forged = patchedAndResigned(EXAMPLE, 78, Buffer.from(mallory.fingerprint, 'hex'));
    expect(readPluginEnvelope(forged).recipient).toBe(mallory.fingerprint);
    expect(refusal(() => openPluginData(forged, { identity: mallory })).code).toBe('SEAL_INVALID');
    expect(refusal(() => openPluginData(forged, { identity: ALICE })).code).toBe('NOT_FOR_THIS_CLIENT');
  });

  it('refuses a client record carrying a low-order seal key (self-consistently signed) with a ProtocolError', () => {
    const attacker = generateServerKeySet();
    const lowOrder = { ...attacker, sealPublicKey: Buffer.alloc(32) };
    const unsigned = recordBytes({ payload: payloadBytes(DATA), clientPublicKey: null, keys: lowOrder }).subarray(0, -64);
    const header = Buffer.from(unsigned.subarray(0, 138));
    header[5] = 2;
    Buffer.from(ALICE.fingerprint, 'hex').copy(header, 78);
    const record = Buffer.concat([header, unsigned.subarray(138)]);
    const signed = Buffer.concat([
      record,
      sign(null, Buffer.concat([Buffer.from('dcx/1 plug-in data signature'), record]), attacker.signPrivateKey),
    ]);
    expect(readPluginEnvelope(signed).mode).toBe('client');
    expect(refusal(() => openPluginData(signed, { identity: ALICE })).code).toBe('MALFORMED');
  });

  it.each([
    ['client', () => EXAMPLE],
    ['anonymous', () => ANONYMOUS],
  ])('refuses every single flipped byte of a %s record with a ProtocolError', (_mode, record) => {
    const bytes = record();
    for (const mask of [0x01, 0x80]) {
      for (let position = 0; position < bytes.length; position++) {
        const tampered = Buffer.from(bytes);
        tampered[position] ^= mask;
        const code = refusal(() => openPluginData(tampered, { identity: ALICE })).code;
        if (position < 4) expect(['TRUNCATED', 'MALFORMED']).toContain(code);
        else if (position === 4) expect(code).toBe('UNSUPPORTED_VERSION');
        else if (position === 5)
          expect(code).toBe('MALFORMED'); // 1^1=0, 2^1=3, 1^0x80, 2^0x80: no such mode
        else if (position < 78)
          expect(code).toBe('MALFORMED'); // key id and keys: the id no longer matches
        else expect(code).toBe('BAD_SIGNATURE');
      }
    }
  });

  it('refuses every truncation: TRUNCATED', () => {
    for (let length = 0; length < EXAMPLE.length; length++) {
      expect(refusal(() => openPluginData(EXAMPLE.subarray(0, length), { identity: ALICE })).code).toBe('TRUNCATED');
    }
  });

  it('refuses bytes appended after the signature: MALFORMED', () => {
    expect(refusal(() => openPluginData(Buffer.concat([EXAMPLE, Buffer.from([0])]), { identity: ALICE })).code).toBe('MALFORMED');
  });

  it('refuses a record over 64 KiB before verifying anything: TOO_LARGE', () => {
    const huge = Buffer.alloc(64 * 1024 + 1);
    huge.writeUInt32BE(huge.length);
    huge[4] = 1;
    expect(refusal(() => readPluginEnvelope(huge)).code).toBe('TOO_LARGE');
  });

  it('refuses a validly sealed and signed payload with trailing bytes: MALFORMED', () => {
    const record = recordBytes({ payload: payloadBytes(DATA, { trailing: Buffer.from([0]) }), clientPublicKey: ALICE.publicKey });
    expect(refusal(() => openPluginData(record, { identity: ALICE })).code).toBe('MALFORMED');
  });

  it('refuses a validly sealed and signed payload whose host is not UTF-8: MALFORMED', () => {
    const record = recordBytes({
      payload: payloadBytes(DATA, { host: Buffer.from([0x64, 0xff, 0x78]) }),
      clientPublicKey: ALICE.publicKey,
    });
    expect(refusal(() => openPluginData(record, { identity: ALICE })).code).toBe('MALFORMED');
  });

  it('refuses a validly sealed and signed payload with a 1025-byte host: TOO_LARGE', () => {
    const ok = recordBytes({ payload: payloadBytes(DATA, { host: Buffer.alloc(1024, 0x68) }), clientPublicKey: ALICE.publicKey });
    expect(openPluginData(ok, { identity: ALICE }).data.server.host).toHaveLength(1024);
    const record = recordBytes({ payload: payloadBytes(DATA, { host: Buffer.alloc(1025, 0x68) }), clientPublicKey: ALICE.publicKey });
    expect(refusal(() => openPluginData(record, { identity: ALICE })).code).toBe('TOO_LARGE');
  });

  it('refuses a validly sealed and signed payload listing 1025 files: TOO_LARGE', () => {
    const record = recordBytes({ payload: payloadBytes(DATA, { fileCount: 1025 }), clientPublicKey: ALICE.publicKey });
    expect(refusal(() => openPluginData(record, { identity: ALICE })).code).toBe('TOO_LARGE');
  });

  it('refuses a payload cut short inside the file list: TRUNCATED', () => {
    const record = recordBytes({ payload: payloadBytes(DATA, { fileCount: 2 }), clientPublicKey: ALICE.publicKey });
    expect(refusal(() => openPluginData(record, { identity: ALICE })).code).toBe('TRUNCATED');
  });
});

describe('sealPluginDataBatch (bundles issued together)', () => {
  const clients = Array.from({ length: 17 }, () => generateClientIdentity());
  /** Client-sealed and anonymous records alternating, each with its own delivery. */
  const requests = (n: number): PluginSealRequest[] =>
    clients.slice(0, n).map((client, i) => {
      const deliveryId = `${i.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;
      return i % 3 === 2
        ? { data: { ...ANONYMOUS_DATA, deliveryId }, clientPublicKey: null }
        : {
            data: { ...DATA, deliveryId, client: { fingerprint: client.fingerprint, address: '192.0.2.10' } },
            clientPublicKey: client.publicKey,
          };
    });
  /** The trailer of a version 2 record, read from its end by hand. */
  const trailerOf = (record: Buffer) => {
    const p = record[record.length - 69];
    return {
      p,
      index: record.readUInt16BE(record.length - 68),
      size: record.readUInt16BE(record.length - 66),
      leafEnd: record.length - 69 - 32 * p,
    };
  };

  it('signs a lone record on its own: version 1, as sealPluginData', () => {
    const [record] = sealPluginDataBatch(requests(1), SERVER);
    expect(record[4]).toBe(1);
    expect(openPluginData(record, { identity: clients[0] }).envelope.version).toBe(1);
  });

  it.each([2, 3, 5, 8, 17])('signs a batch of %i once: version 2 records whose leaves lead to one signed Merkle root', (n) => {
    const batch = requests(n);
    const records = sealPluginDataBatch(batch, SERVER);
    expect(records).toHaveLength(n);
    const trailers = records.map(trailerOf);
    // Checked by hand: the header states the whole length, the trailer its place, every record the same signature.
    records.forEach((record, i) => {
      expect(record.readUInt32BE(0)).toBe(record.length);
      expect(record[4]).toBe(2);
      expect(trailers[i]).toMatchObject({ index: i, size: n });
      expect(record.subarray(-64).equals(records[0].subarray(-64))).toBe(true);
    });
    const leaves = records.map((record, i) => record.subarray(0, trailers[i].leafEnd));
    const { root, paths } = merkleTree(leaves.map(leafHash));
    const signed = Buffer.concat([Buffer.from('dcx/1 plug-in data batch signature'), u16(n), root]);
    expect(
      verify(
        null,
        signed,
        createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: SERVER.signPublicKey.toString('base64url') }, format: 'jwk' }),
        records[0].subarray(-64),
      ),
    ).toBe(true);
    records.forEach((record, i) => {
      expect(Buffer.concat(paths[i]).equals(record.subarray(trailers[i].leafEnd, record.length - 69))).toBe(true);
      // Each opens to its own data, only with its own key; the header is still the seal's additional data.
      const { envelope, data } = openPluginData(record, { identity: clients[i] });
      expect(envelope.version).toBe(2);
      expect(data).toEqual(batch[i].data);
      if (batch[i].clientPublicKey)
        expect(refusal(() => openPluginData(record, { identity: clients[(i + 1) % n] })).code).toBe('NOT_FOR_THIS_CLIENT');
    });
  });

  it('refuses every flipped byte of a batch record with a ProtocolError', () => {
    const record = sealPluginDataBatch(requests(5), SERVER)[3];
    const pathLengthAt = record.length - 69;
    for (const mask of [0x01, 0x80]) {
      for (let position = 0; position < record.length; position++) {
        const tampered = Buffer.from(record);
        tampered[position] ^= mask;
        const code = refusal(() => openPluginData(tampered, { identity: clients[3] })).code;
        if (position < 4) expect(['TRUNCATED', 'MALFORMED']).toContain(code);
        else if (position === 4) expect(code).toBe('UNSUPPORTED_VERSION');
        else if (position === 5) expect(code).toBe('MALFORMED');
        else if (position < 78) expect(code).toBe('MALFORMED');
        else if (position === pathLengthAt && mask === 0x80)
          expect(code).toBe('MALFORMED'); // a path of over 16 hashes
        else expect(code).toBe('BAD_SIGNATURE');
      }
    }
  });

  it(
    'refuses every truncation of a batch record, also with its length field rewritten to match: TRUNCATED while no proof ' +
      'fits after a header and a tag',
    () => {
      const record = sealPluginDataBatch(requests(5), SERVER)[4];
      const proofFits = 138 + 16 + 5 + 64;
      for (let length = 0; length < record.length; length++) {
        expect(refusal(() => openPluginData(record.subarray(0, length), { identity: clients[4] })).code).toBe('TRUNCATED');
        if (length < 4) continue;
        const shortened = Buffer.from(record.subarray(0, length));
        shortened.writeUInt32BE(length);
        const code = refusal(() => openPluginData(shortened, { identity: clients[4] })).code;
        if (length < proofFits) expect(code).toBe('TRUNCATED');
        else expect(['TRUNCATED', 'MALFORMED', 'BAD_SIGNATURE']).toContain(code);
      }
    },
  );

  it('refuses a batch record whose stated path does not fit before its proof (length otherwise right): TRUNCATED', () => {
    const record = Buffer.from(sealPluginDataBatch(requests(2), SERVER)[0]);
    record[record.length - 69] = 16; // 16 hashes: allowed, but 512 bytes reach back past the header
    expect(refusal(() => openPluginData(record, { identity: clients[0] })).code).toBe('TRUNCATED');
  });

  it('refuses the proof of another record of the batch, and another index or tree size: BAD_SIGNATURE', () => {
    const same = clients
      .slice(0, 8)
      .map((client, i) => ({ data: { ...DATA, deliveryId: `0000000${i}-0000-4000-8000-000000000000` }, clientPublicKey: ALICE.publicKey }));
    const records = sealPluginDataBatch(same, SERVER);
    const [first, second] = [records[0], records[1]];
    const { leafEnd } = trailerOf(first);
    const swapped = Buffer.concat([first.subarray(0, leafEnd), second.subarray(leafEnd)]);
    expect(refusal(() => openPluginData(swapped, { identity: ALICE })).code).toBe('BAD_SIGNATURE');
    const otherIndex = Buffer.from(first);
    otherIndex.writeUInt16BE(1, first.length - 68);
    expect(refusal(() => openPluginData(otherIndex, { identity: ALICE })).code).toBe('BAD_SIGNATURE');
    // Leaf 0 of 8: its path also leads to the root when checked as a tree of 5, hence the signed size.
    const otherSize = Buffer.from(first);
    otherSize.writeUInt16BE(5, first.length - 66);
    expect(refusal(() => openPluginData(otherSize, { identity: ALICE })).code).toBe('BAD_SIGNATURE');
    expect(openPluginData(first, { identity: ALICE }).data.deliveryId).toBe('00000000-0000-4000-8000-000000000000');
  });

  it('fails as a whole when one record of the batch cannot be sealed', () => {
    const batch = requests(3);
    batch[1] = { data: { ...DATA, server: { ...DATA.server, host: 'h'.repeat(1025) } }, clientPublicKey: null };
    expect(refusal(() => sealPluginDataBatch(batch, SERVER)).code).toBe('TOO_LARGE');
  });
});

describe('anonymous mode (what it does not protect)', () => {
  it('can be opened by anyone holding only the record: the key comes from the public seal key in its header', () => {
    const header = ANONYMOUS.subarray(0, 138);
    const key = Buffer.from(hkdfSync('sha256', header.subarray(46, 78), header.subarray(110, 126), 'dcx/1 plug-in data, bundle key', 32));
    const sealed = ANONYMOUS.subarray(138, ANONYMOUS.length - 64);
    const decipher = createDecipheriv('aes-256-gcm', key, header.subarray(126, 138));
    decipher.setAAD(header);
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const plaintext = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
    expect(plaintext.equals(payloadBytes(ANONYMOUS_DATA))).toBe(true);
  });
});
