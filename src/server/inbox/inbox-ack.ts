import { FrameParser, type Frame } from '../../protocol/frame.js';
import type { RecipientPrincipal } from '../recipients/request-auth.service.js';

/** Why an ack is refused before its confirmation is decided; `status` the HTTP status of the refusal. */
export interface AckRefusal {
  status: 400 | 403 | 404;
  /** The `refused` event's reason (the inbox's refusals, docs/design/recipients-distributions.md). */
  reason: string;
  message: string;
}

/**
 * The inbox's part of an ack (the confirmation itself is ConfirmationService's): the acked delivery must be
 * addressed to this recipient, and the frame must confirm that delivery and no other, so that an ack cannot
 * release one delivery's lease with another's confirmation. null: the confirmation may be decided.
 */
export function ackRefusal(
  delivery: { recipientId: string | null } | null,
  principal: Pick<RecipientPrincipal, 'recipientId'>,
  ackId: string,
  frameDeliveryId: string | null,
): AckRefusal | null {
  if (!delivery || !delivery.recipientId) return { status: 404, reason: 'not in inbox', message: `no delivery ${ackId} in your inbox` };
  if (delivery.recipientId !== principal.recipientId) {
    return { status: 403, reason: 'another recipient', message: `delivery ${ackId} is addressed to another recipient` };
  }
  if (frameDeliveryId !== null && frameDeliveryId !== ackId.toLowerCase()) {
    return {
      status: 400,
      reason: 'ack of another delivery',
      message: `ack.deliveryId ${ackId} is not the delivery its confirmation confirms (${frameDeliveryId})`,
    };
  }
  return null;
}

/** The bytes as exactly one frame, or why they are none (the "malformed" answer's message). */
export function oneFrame(bytes: Buffer, maxFrameBytes: number): Frame | string {
  const parser = new FrameParser(maxFrameBytes);
  const frames: Frame[] = [];
  try {
    parser.parse(bytes, (frame) => frames.push(frame));
  } catch (error) {
    return (error as Error).message;
  }
  if (frames.length === 1 && parser.pending === 0) return frames[0];
  return frames.length === 0 ? 'ack.confirmation is not a whole confirmation frame' : 'ack.confirmation holds more than one frame';
}
