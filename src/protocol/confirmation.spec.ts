import { createCipheriv, createHash, hkdfSync } from 'node:crypto';
import { decodeConfirmationFrame, deriveConfirmKey, encodeConfirmation, openConfirmation, SealedConfirmation } from './confirmation.js';
import { frameOf, parseOne, refusal } from './testing/test-buffers.js';
import { CONFIRMATION_FRAME as EXAMPLE_FRAME, DELIVERY_ID, DIGEST, FINGERPRINT, NONCE } from './testing/worked-example.js';

// Fixed values of the worked example in docs/PROTOCOL.md.
const ID_BYTES = Buffer.from('0f1e2d3c4b5a49788796a5b4c3d2e1f0', 'hex');
const SECRET = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
const CONFIRM_KEY_HEX = '980c1539133cb176c6dadbd647f2e8a2f85df1d108f50a015415667176526839';

/** Reference: HKDF-SHA256(ikm = secret, salt = 16 id bytes, info = label), 32 bytes. */
function referenceKey(secret: Buffer, idBytes: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, idBytes, 'dcx/1 confirmation', 32));
}

/** Reference builder: any plaintext, sealed exactly as the spec says (AAD = the 34 clear bytes). */
function buildFrame(plaintext: Buffer, key: Buffer, nonce: Buffer = NONCE, idBytes: Buffer = ID_BYTES): Buffer {
  const clear = Buffer.alloc(34);
  clear.writeUInt32BE(34 + plaintext.length + 16, 0);
  clear.writeUInt8(1, 4);
  clear.writeUInt8(1, 5);
  idBytes.copy(clear, 6);
  nonce.copy(clear, 22);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(clear);
  return Buffer.concat([clear, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function plaintextOf(fingerprintHex: string, digests: string[]): Buffer {
  const count = Buffer.alloc(2);
  count.writeUInt16BE(digests.length);
  return Buffer.concat([Buffer.from(fingerprintHex, 'hex'), count, ...digests.map((d) => Buffer.from(d, 'hex'))]);
}

const digestOf = (text: string) => createHash('sha256').update(text).digest('hex');

describe('deriveConfirmKey', () => {
  it('is HKDF-SHA256(secret, salt = id bytes, info = "dcx/1 confirmation")', () => {
    expect(deriveConfirmKey(SECRET, DELIVERY_ID).toString('hex')).toBe(CONFIRM_KEY_HEX);
    expect(referenceKey(SECRET, ID_BYTES).toString('hex')).toBe(CONFIRM_KEY_HEX);
  });

  it('differs per delivery for one secret', () => {
    expect(deriveConfirmKey(SECRET, '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f1').toString('hex')).not.toBe(CONFIRM_KEY_HEX);
  });
});

describe('the worked example of docs/PROTOCOL.md', () => {
  it('is what the reference builder makes', () => {
    expect(buildFrame(plaintextOf(FINGERPRINT, [DIGEST]), referenceKey(SECRET, ID_BYTES)).equals(EXAMPLE_FRAME)).toBe(true);
    expect(DIGEST).toBe(digestOf('hello, DCX\n'));
  });

  it('goes through FrameParser, decodeConfirmationFrame and openConfirmation', () => {
    const sealed = decodeConfirmationFrame(parseOne(EXAMPLE_FRAME));
    expect(sealed.deliveryId).toBe(DELIVERY_ID);
    expect(sealed.nonce.equals(NONCE)).toBe(true);
    expect(sealed.aad.equals(EXAMPLE_FRAME.subarray(0, 34))).toBe(true);
    expect(sealed.sealed.equals(EXAMPLE_FRAME.subarray(34))).toBe(true);
    expect(openConfirmation(sealed, deriveConfirmKey(SECRET, DELIVERY_ID))).toEqual({
      deliveryId: DELIVERY_ID,
      clientFingerprint: FINGERPRINT,
      digests: [DIGEST],
    });
  });
});

describe('encodeConfirmation', () => {
  it('writes exactly the bytes of the layout (checked with its own random nonce)', () => {
    const digests = [DIGEST, digestOf('second file')];
    const frame = encodeConfirmation({ deliveryId: DELIVERY_ID, clientFingerprint: FINGERPRINT, digests }, SECRET);
    const nonce = frame.subarray(22, 34);
    expect(frame.equals(buildFrame(plaintextOf(FINGERPRINT, digests), referenceKey(SECRET, ID_BYTES), nonce))).toBe(true);
  });

  it('uses a fresh nonce every time', () => {
    const confirmation = { deliveryId: DELIVERY_ID, clientFingerprint: FINGERPRINT, digests: [DIGEST] };
    const a = encodeConfirmation(confirmation, SECRET);
    const b = encodeConfirmation(confirmation, SECRET);
    expect(a.subarray(22, 34).equals(b.subarray(22, 34))).toBe(false);
  });

  it.each([0, 1, 3])('round-trips %i digests through FrameParser', (count) => {
    const digests = Array.from({ length: count }, (_, i) => digestOf(`file ${i}`));
    const frame = encodeConfirmation({ deliveryId: DELIVERY_ID, clientFingerprint: FINGERPRINT, digests }, SECRET);
    const opened = openConfirmation(decodeConfirmationFrame(parseOne(frame)), deriveConfirmKey(SECRET, DELIVERY_ID));
    expect(opened).toEqual({ deliveryId: DELIVERY_ID, clientFingerprint: FINGERPRINT, digests });
  });

  it('refuses more than 1024 digests as TOO_LARGE', () => {
    const digests = Array.from({ length: 1025 }, () => DIGEST);
    expect(refusal(() => encodeConfirmation({ deliveryId: DELIVERY_ID, clientFingerprint: FINGERPRINT, digests }, SECRET)).code).toBe(
      'TOO_LARGE',
    );
  });

  it('refuses a malformed delivery id', () => {
    expect(refusal(() => encodeConfirmation({ deliveryId: 'not-an-id', clientFingerprint: FINGERPRINT, digests: [] }, SECRET)).code).toBe(
      'MALFORMED',
    );
  });
});

describe('refusals', () => {
  const key = deriveConfirmKey(SECRET, DELIVERY_ID);

  it('opens nothing with the wrong secret: SEAL_INVALID', () => {
    const wrong = Buffer.from(SECRET);
    wrong[0] ^= 1;
    expect(
      refusal(() => openConfirmation(decodeConfirmationFrame(frameOf(EXAMPLE_FRAME)), deriveConfirmKey(wrong, DELIVERY_ID))).code,
    ).toBe('SEAL_INVALID');
  });

  it('refuses a flipped delivery id byte (clear, authenticated as AAD): SEAL_INVALID', () => {
    for (let position = 6; position < 22; position++) {
      const tampered = Buffer.from(EXAMPLE_FRAME);
      tampered[position] ^= 0x01;
      const sealed = decodeConfirmationFrame(parseOne(tampered));
      expect(sealed.deliveryId).not.toBe(DELIVERY_ID);
      expect(refusal(() => openConfirmation(sealed, key)).code).toBe('SEAL_INVALID');
    }
  });

  it('refuses every single flipped byte with a ProtocolError', () => {
    for (let position = 0; position < EXAMPLE_FRAME.length; position++) {
      const tampered = Buffer.from(EXAMPLE_FRAME);
      tampered[position] ^= 0x80;
      const error = refusal(() => openConfirmation(decodeConfirmationFrame(frameOf(tampered)), key));
      // type byte: not a confirmation; every other byte is in the AAD or under the tag
      expect(error.code).toBe(position === 5 ? 'MALFORMED' : 'SEAL_INVALID');
    }
  });

  it('refuses every truncation with a ProtocolError', () => {
    for (let length = 6; length < EXAMPLE_FRAME.length; length++) {
      const cut = Buffer.from(EXAMPLE_FRAME.subarray(0, length));
      cut.writeUInt32BE(length, 0); // a well-formed frame whose body is just short
      const error = refusal(() => openConfirmation(decodeConfirmationFrame(frameOf(cut)), key));
      expect(error.code).toBe(length < 34 + 16 ? 'TRUNCATED' : 'SEAL_INVALID');
    }
  });

  it('refuses a frame of another type: MALFORMED', () => {
    const answer = Buffer.from(EXAMPLE_FRAME);
    answer[5] = 2;
    expect(refusal(() => decodeConfirmationFrame(frameOf(answer))).code).toBe('MALFORMED');
  });

  it('refuses trailing bytes inside the sealed payload: MALFORMED', () => {
    const plaintext = Buffer.concat([plaintextOf(FINGERPRINT, [DIGEST]), Buffer.from([0])]);
    const frame = buildFrame(plaintext, key);
    expect(refusal(() => openConfirmation(decodeConfirmationFrame(frameOf(frame)), key)).code).toBe('MALFORMED');
  });

  it('refuses a digest count larger than the digests sent: TRUNCATED', () => {
    const plaintext = plaintextOf(FINGERPRINT, [DIGEST]);
    plaintext.writeUInt16BE(2, 32);
    expect(refusal(() => openConfirmation(decodeConfirmationFrame(frameOf(buildFrame(plaintext, key))), key)).code).toBe('TRUNCATED');
  });

  it('refuses a digest count over 1024 before reading them: TOO_LARGE', () => {
    const plaintext = plaintextOf(FINGERPRINT, []);
    plaintext.writeUInt16BE(1025, 32);
    expect(refusal(() => openConfirmation(decodeConfirmationFrame(frameOf(buildFrame(plaintext, key))), key)).code).toBe('TOO_LARGE');
  });

  it('opens a correctly sealed frame built by the reference builder (control for the tests above)', () => {
    const digests = [digestOf('a'), digestOf('b')];
    const opened: SealedConfirmation = decodeConfirmationFrame(frameOf(buildFrame(plaintextOf(FINGERPRINT, digests), key)));
    expect(openConfirmation(opened, key).digests).toEqual(digests);
  });
});
