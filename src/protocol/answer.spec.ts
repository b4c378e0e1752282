import { Answer, AnswerStatus, answerStatusName, decodeAnswer, encodeAnswer, NO_DELIVERY_ID } from './answer.js';
import { frameOf, parseOne, refusal } from './testing/test-buffers.js';
import { DELIVERY_ID, ID_HEX } from './testing/worked-example.js';

// The receipt of the worked example (receipt.spec.ts checks its fields and signature).
const RECEIPT_HEX =
  '000000d501c1f978d18794bc8d0f1e2d3c4b5a49788796a5b4c3d2e1f0300c9c9603b92a4b39ed3958bf9240114804db4fd373012c0ca47432d63425' +
  'ae0a3139322e302e322e3130000001a19b7ca680000001a19b7cac5c000001a19b7caf4a0001000968656c6c6f2e747874000000000000000b32e6a8' +
  '1f1fe552d2a8fd4ca7dd98d872e09eccfe0c4e28b4844eb50c5d440b2adb3aa96ce8b7ed08354d75277eb75ff2193b5aee94354c765e855eeebc928c' +
  'b369115d181ca92845129ec30a21a1826c902d01096db51532bc91515849786c02';

/** Reference: [len u32][01][02][status u8][id 16][message: u16 length + UTF-8][receipt: u16 length + bytes]. */
function answerBytes(status: number, idHex: string, message: Buffer, receipt: Buffer): Buffer {
  const body = Buffer.alloc(1 + 16 + 2 + message.length + 2 + receipt.length);
  let at = body.writeUInt8(status, 0);
  at += Buffer.from(idHex, 'hex').copy(body, at);
  at = body.writeUInt16BE(message.length, at);
  at += message.copy(body, at);
  at = body.writeUInt16BE(receipt.length, at);
  receipt.copy(body, at);
  const header = Buffer.from([0, 0, 0, 0, 1, 2]);
  header.writeUInt32BE(6 + body.length);
  return Buffer.concat([header, body]);
}

const ACCEPTED = answerBytes(0, ID_HEX, Buffer.from('accepted'), Buffer.from(RECEIPT_HEX, 'hex'));
const UNKNOWN = Buffer.from('00000022' + '01' + '02' + '02' + ID_HEX + '0007' + Buffer.from('unknown').toString('hex') + '0000', 'hex');

describe('the reference builder', () => {
  it('agrees with the hex literal of an answer without receipt', () => {
    expect(answerBytes(2, ID_HEX, Buffer.from('unknown'), Buffer.alloc(0)).equals(UNKNOWN)).toBe(true);
  });
});

describe('encodeAnswer', () => {
  it('writes the worked example (accepted, with receipt) byte for byte', () => {
    const answer: Answer = {
      status: AnswerStatus.Accepted,
      deliveryId: DELIVERY_ID,
      message: 'accepted',
      receipt: Buffer.from(RECEIPT_HEX, 'hex'),
    };
    expect(encodeAnswer(answer).toString('hex')).toBe(ACCEPTED.toString('hex'));
    expect(ACCEPTED.length).toBe(248);
  });

  it('writes an answer without receipt with a zero receipt length', () => {
    expect(encodeAnswer({ status: AnswerStatus.Unknown, deliveryId: DELIVERY_ID, message: 'unknown', receipt: null }).equals(UNKNOWN)).toBe(
      true,
    );
  });

  it('writes the all-zero id when no delivery could be named', () => {
    const frame = encodeAnswer({ status: AnswerStatus.Malformed, deliveryId: NO_DELIVERY_ID, message: '', receipt: null });
    expect(frame.toString('hex')).toBe('0000001b' + '0102' + '06' + '00'.repeat(16) + '0000' + '0000');
  });

  it('refuses a message over 1024 bytes: TOO_LARGE', () => {
    expect(
      refusal(() => encodeAnswer({ status: AnswerStatus.TryLater, deliveryId: DELIVERY_ID, message: 'é'.repeat(513), receipt: null })).code,
    ).toBe('TOO_LARGE');
  });

  it('refuses a receipt over 65535 bytes: TOO_LARGE', () => {
    expect(
      refusal(() => encodeAnswer({ status: AnswerStatus.Accepted, deliveryId: DELIVERY_ID, message: '', receipt: Buffer.alloc(65536) }))
        .code,
    ).toBe('TOO_LARGE');
  });
});

describe('decodeAnswer', () => {
  it('reads the worked example through FrameParser', () => {
    const answer = decodeAnswer(parseOne(ACCEPTED));
    expect(answer.status).toBe(AnswerStatus.Accepted);
    expect(answer.deliveryId).toBe(DELIVERY_ID);
    expect(answer.message).toBe('accepted');
    expect(answer.receipt?.toString('hex')).toBe(RECEIPT_HEX);
  });

  it('reads an answer without receipt as receipt null', () => {
    expect(decodeAnswer(parseOne(UNKNOWN))).toEqual({
      status: AnswerStatus.Unknown,
      deliveryId: DELIVERY_ID,
      message: 'unknown',
      receipt: null,
    });
  });

  it.each([
    [0, 'accepted'],
    [1, 'already_confirmed'],
    [2, 'unknown'],
    [3, 'expired'],
    [4, 'client_mismatch'],
    [5, 'digest_mismatch'],
    [6, 'malformed'],
    [7, 'try_later'],
    [8, 'seal_invalid'],
  ])('reads status code %i (%s)', (code, name) => {
    const answer = decodeAnswer(frameOf(answerBytes(code, ID_HEX, Buffer.from(name), Buffer.alloc(0))));
    expect(answer.status).toBe(code);
    expect(answerStatusName(answer.status)).toBe(name);
  });

  it.each([9, 0x80, 0xff])('refuses unknown status %i: MALFORMED', (code) => {
    expect(refusal(() => decodeAnswer(frameOf(answerBytes(code, ID_HEX, Buffer.alloc(0), Buffer.alloc(0))))).code).toBe('MALFORMED');
  });

  it('refuses a confirmation frame: MALFORMED', () => {
    const wrongType = Buffer.from(UNKNOWN);
    wrongType[5] = 1;
    expect(refusal(() => decodeAnswer(frameOf(wrongType))).code).toBe('MALFORMED');
  });

  it('refuses a message over 1024 bytes: TOO_LARGE', () => {
    expect(decodeAnswer(frameOf(answerBytes(7, ID_HEX, Buffer.alloc(1024, 0x61), Buffer.alloc(0)))).message).toHaveLength(1024);
    expect(refusal(() => decodeAnswer(frameOf(answerBytes(7, ID_HEX, Buffer.alloc(1025, 0x61), Buffer.alloc(0))))).code).toBe('TOO_LARGE');
  });

  it.each([
    ['a lone continuation byte', [0x80]],
    ['a truncated two-byte sequence', [0x61, 0xc3]],
    ['an overlong encoding of "/"', [0xc0, 0xaf]],
    ['a UTF-16 surrogate', [0xed, 0xa0, 0x80]],
  ])('refuses a message with %s: MALFORMED', (_what, bytes) => {
    expect(refusal(() => decodeAnswer(frameOf(answerBytes(2, ID_HEX, Buffer.from(bytes), Buffer.alloc(0))))).code).toBe('MALFORMED');
  });

  it('accepts a message holding U+FFFD itself (the UTF-8 check is exact, not a search for U+FFFD)', () => {
    expect(decodeAnswer(frameOf(answerBytes(2, ID_HEX, Buffer.from('x\ufffdy'), Buffer.alloc(0)))).message).toBe('x\ufffdy');
  });

  it('refuses trailing bytes: MALFORMED', () => {
    const padded = Buffer.concat([UNKNOWN, Buffer.from([0])]);
    padded.writeUInt32BE(padded.length);
    expect(refusal(() => decodeAnswer(frameOf(padded))).code).toBe('MALFORMED');
  });

  it('refuses every truncation: TRUNCATED', () => {
    for (let length = 6; length < ACCEPTED.length; length++) {
      const cut = Buffer.from(ACCEPTED.subarray(0, length));
      cut.writeUInt32BE(length);
      expect(refusal(() => decodeAnswer(frameOf(cut))).code).toBe('TRUNCATED');
    }
  });
});
