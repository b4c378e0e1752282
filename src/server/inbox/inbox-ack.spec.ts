import { encodeConfirmation } from '../../protocol/confirmation.js';
import { FrameType } from '../../protocol/constants.js';
import { ackRefusal, oneFrame } from './inbox-ack.js';

const ID = '0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9';
const OTHER = 'ffeeddcc-bbaa-9988-7766-554433221100';
const me = { recipientId: 'r-1' };

describe('ackRefusal: the inbox part of an ack', () => {
  test('a delivery of this recipient whose frame confirms it: decided by the confirmation service', () => {
    expect(ackRefusal({ recipientId: 'r-1' }, me, ID, ID)).toBeNull();
    // An id in upper case names the same delivery.
    expect(ackRefusal({ recipientId: 'r-1' }, me, ID.toUpperCase(), ID)).toBeNull();
    // A frame too broken to name a delivery: the confirmation service answers "malformed" and records it.
    expect(ackRefusal({ recipientId: 'r-1' }, me, ID, null)).toBeNull();
  });

  test('no such delivery, or one of no recipient: 404 "not in inbox"', () => {
    expect(ackRefusal(null, me, ID, ID)).toMatchObject({ status: 404, reason: 'not in inbox' });
    expect(ackRefusal({ recipientId: null }, me, ID, ID)).toMatchObject({ status: 404, reason: 'not in inbox' });
  });

  test("another recipient's delivery: 403 'another recipient', as a bundle pull is refused", () => {
    expect(ackRefusal({ recipientId: 'r-2' }, me, ID, ID)).toMatchObject({ status: 403, reason: 'another recipient' });
  });

  test('a confirmation of another delivery than the one acked: 400, so no lease is released by a foreign frame', () => {
    expect(ackRefusal({ recipientId: 'r-1' }, me, ID, OTHER)).toEqual({
      status: 400,
      reason: 'ack of another delivery',
      message: `ack.deliveryId ${ID} is not the delivery its confirmation confirms (${OTHER})`,
    });
  });
});

describe('oneFrame', () => {
  const frame = encodeConfirmation({ deliveryId: ID, clientFingerprint: 'ab'.repeat(32), digests: ['cd'.repeat(32)] }, Buffer.alloc(32, 7));

  test('exactly one frame', () => {
    const parsed = oneFrame(frame, 65536);
    expect(typeof parsed).not.toBe('string');
    expect(parsed).toMatchObject({ type: FrameType.Confirmation, raw: frame });
  });

  test('a cut frame, two frames, nothing, or over the limit: the malformed answer says which', () => {
    expect(oneFrame(frame.subarray(0, frame.length - 1), 65536)).toBe('ack.confirmation is not a whole confirmation frame');
    expect(oneFrame(Buffer.alloc(0), 65536)).toBe('ack.confirmation is not a whole confirmation frame');
    expect(oneFrame(Buffer.concat([frame, frame]), 65536)).toBe('ack.confirmation holds more than one frame');
    expect(oneFrame(frame, 16)).toMatch(/exceeds the limit of 16/);
  });
});
