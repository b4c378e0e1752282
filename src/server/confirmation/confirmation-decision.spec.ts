import { randomBytes } from 'node:crypto';
import { AnswerStatus } from '../../protocol/answer.js';
import { encodeConfirmation, type Confirmation } from '../../protocol/confirmation.js';
import { FrameType } from '../../protocol/constants.js';
import { ProtocolError } from '../../protocol/errors.js';
import { FrameParser, type Frame } from '../../protocol/frame.js';
import { ConfirmableDelivery, decideConfirmation, readConfirmationFrame } from './confirmation-decision.js';

const NOW = new Date('2026-12-02T12:00:00Z');
const SHA256 = 'ab'.repeat(32);
const FINGERPRINT = 'cd'.repeat(32);
const ADDRESS = '192.0.2.7';

function delivery(overrides: Partial<ConfirmableDelivery> = {}): ConfirmableDelivery {
  return {
    id: '0f0e0d0c-0b0a-4908-8706-050403020100',
    contentId: '11111111-2222-4333-8444-555555555555',
    status: 'sent',
    clientFingerprint: FINGERPRINT,
    requesterIp: ADDRESS,
    confirmKey: Buffer.alloc(32),
    receipt: null,
    issuedAt: new Date('2026-12-01T12:00:00Z'),
    sentAt: new Date('2026-12-01T12:00:01Z'),
    expiresAt: new Date('2026-12-03T12:00:00Z'),
    confirmedAt: null,
    installationRevokedAt: null,
    content: { name: 'a.bin', size: 1000, sha256: SHA256 },
    ...overrides,
  };
}

function confirmation(overrides: Partial<Confirmation> = {}): Confirmation {
  return { deliveryId: delivery().id, clientFingerprint: FINGERPRINT, digests: [SHA256], ...overrides };
}

describe('decideConfirmation', () => {
  test('accepts the right client with the right digest, before expiry', () => {
    const opened = confirmation();
    expect(decideConfirmation(delivery(), opened, ADDRESS, NOW)).toEqual({ outcome: 'accept', confirmation: opened });
  });

  test('accepts an anonymous delivery confirmed from its requester IP, whatever key fingerprint it names', () => {
    expect(
      decideConfirmation(delivery({ clientFingerprint: null }), confirmation({ clientFingerprint: 'ef'.repeat(32) }), ADDRESS, NOW).outcome,
    ).toBe('accept');
  });

  test('a pending delivery (never pulled, no key) is refused "unknown" with reason pending, whatever was sent', () => {
    const pending = delivery({ status: 'pending', confirmKey: null, requesterIp: null, clientFingerprint: null });
    expect(decideConfirmation(pending, null, ADDRESS, NOW)).toEqual({
      outcome: 'refuse',
      status: AnswerStatus.Unknown,
      message: 'the delivery was not pulled yet',
      reason: 'pending',
    });
  });

  test('a withdrawn delivery is refused "expired" with reason withdrawn', () => {
    const withdrawn = delivery({ status: 'withdrawn', confirmKey: null, requesterIp: null });
    expect(decideConfirmation(withdrawn, null, ADDRESS, NOW)).toMatchObject({ status: AnswerStatus.Expired, reason: 'withdrawn' });
  });

  test('a delivery sealed to a revoked installation is refused with reason "installation revoked", even right', () => {
    const revokedAt = new Date('2026-12-02T11:00:00Z');
    expect(decideConfirmation(delivery({ installationRevokedAt: revokedAt }), confirmation(), ADDRESS, NOW)).toEqual({
      outcome: 'refuse',
      status: AnswerStatus.ClientMismatch,
      message: `the installation this delivery was sealed to was revoked on ${revokedAt.toISOString()}`,
      reason: 'installation revoked',
    });
    // Confirmed before the revocation: it stays confirmed.
    const confirmed = delivery({ installationRevokedAt: revokedAt, status: 'confirmed', confirmedAt: NOW });
    expect(decideConfirmation(confirmed, confirmation(), ADDRESS, NOW).outcome).toBe('already-confirmed');
  });

  test('an unknown delivery is refused "unknown"', () => {
    expect(decideConfirmation(undefined, null, ADDRESS, NOW)).toEqual({
      outcome: 'refuse',
      status: AnswerStatus.Unknown,
      message: 'no such delivery',
    });
  });

  test('a seal that does not open is refused "seal invalid"; other opening errors "malformed"', () => {
    expect(decideConfirmation(delivery(), new ProtocolError('SEAL_INVALID', 'bad tag'), ADDRESS, NOW)).toEqual({
      outcome: 'refuse',
      status: AnswerStatus.SealInvalid,
      message: 'bad tag',
    });
    expect(decideConfirmation(delivery(), new Error('short payload'), ADDRESS, NOW)).toEqual({
      outcome: 'refuse',
      status: AnswerStatus.Malformed,
      message: 'short payload',
    });
  });

  test('a confirmed delivery is already confirmed, even with a wrong digest or past its expiry', () => {
    const confirmed = delivery({
      status: 'confirmed',
      confirmedAt: new Date('2026-12-02T11:00:00Z'),
      expiresAt: new Date('2026-12-02T11:30:00Z'),
    });
    expect(decideConfirmation(confirmed, confirmation({ digests: ['00'.repeat(32)] }), ADDRESS, NOW)).toEqual({
      outcome: 'already-confirmed',
      message: 'already confirmed at 2026-12-02T11:00:00.000Z',
    });
  });

  test('a delivery whose content row is missing throws (no decision can be made)', () => {
    expect(() => decideConfirmation(delivery({ content: null }), confirmation(), ADDRESS, NOW)).toThrow(/content .* not found/);
  });

  test('an expired status, or an expiry time before now, is refused "expired"', () => {
    const message = 'the delivery expired at 2026-12-03T12:00:00.000Z';
    expect(decideConfirmation(delivery({ status: 'expired' }), confirmation(), ADDRESS, NOW)).toEqual({
      outcome: 'refuse',
      status: AnswerStatus.Expired,
      message,
    });
    const past = delivery({ expiresAt: new Date(NOW.getTime() - 1) });
    expect(decideConfirmation(past, confirmation(), ADDRESS, NOW)).toMatchObject({ outcome: 'refuse', status: AnswerStatus.Expired });
    expect(decideConfirmation(delivery({ expiresAt: NOW }), confirmation(), ADDRESS, NOW).outcome).toBe('accept');
  });

  test('another client is refused "client mismatch": another key, or for an anonymous delivery another IP', () => {
    expect(decideConfirmation(delivery(), confirmation({ clientFingerprint: 'ef'.repeat(32) }), ADDRESS, NOW)).toMatchObject({
      outcome: 'refuse',
      status: AnswerStatus.ClientMismatch,
    });
    expect(decideConfirmation(delivery({ clientFingerprint: null }), confirmation(), '192.0.2.8', NOW)).toMatchObject({
      outcome: 'refuse',
      status: AnswerStatus.ClientMismatch,
    });
  });

  test('another digest, or another number of digests, is refused "digest mismatch"', () => {
    for (const digests of [['00'.repeat(32)], [], [SHA256, SHA256]]) {
      expect(decideConfirmation(delivery(), confirmation({ digests }), ADDRESS, NOW)).toMatchObject({
        outcome: 'refuse',
        status: AnswerStatus.DigestMismatch,
      });
    }
  });
});

describe('readConfirmationFrame', () => {
  const parse = (bytes: Buffer): Frame => {
    const frames: Frame[] = [];
    new FrameParser(65536).parse(bytes, (frame) => frames.push(frame));
    return frames[0];
  };

  test('a confirmation frame gives its sealed confirmation', () => {
    const frame = parse(encodeConfirmation(confirmation(), randomBytes(32)));
    expect(readConfirmationFrame(frame)).toMatchObject({ deliveryId: delivery().id });
  });

  test('a frame of another type is refused "malformed"', () => {
    const frame = parse(encodeConfirmation(confirmation(), randomBytes(32)));
    expect(readConfirmationFrame({ ...frame, type: FrameType.Answer })).toEqual({
      status: AnswerStatus.Malformed,
      message: `frame type ${FrameType.Answer} is not a confirmation`,
    });
  });

  test('a confirmation frame whose body does not decode is refused "malformed"', () => {
    const frame = parse(encodeConfirmation(confirmation(), randomBytes(32)));
    expect(readConfirmationFrame({ ...frame, body: frame.body.subarray(0, 3) })).toMatchObject({ status: AnswerStatus.Malformed });
  });
});
