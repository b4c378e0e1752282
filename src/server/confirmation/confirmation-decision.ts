import { AnswerStatus } from '../../protocol/answer.js';
import { Confirmation, decodeConfirmationFrame, SealedConfirmation } from '../../protocol/confirmation.js';
import { FrameType } from '../../protocol/constants.js';
import { ProtocolError } from '../../protocol/errors.js';
import type { Frame } from '../../protocol/frame.js';
import type { DeliveryStatus } from '../deliveries/delivery.entity.js';

/** What a confirmation decision reads of a delivery and its content (null: the content was removed). */
export interface ConfirmableDelivery {
  id: string;
  contentId: string;
  status: DeliveryStatus;
  clientFingerprint: string | null;
  /** null while pending (a distribution's delivery not pulled yet): then there is no key either. */
  requesterIp: string | null;
  confirmKey: Buffer | null;
  /** When the installation a recipient's delivery was sealed to was revoked (null: not revoked, or no recipient). */
  installationRevokedAt: Date | null;
  receipt: Buffer | null;
  issuedAt: Date;
  sentAt: Date | null;
  expiresAt: Date;
  confirmedAt: Date | null;
  content: { name: string; size: number; sha256: string } | null;
}

export type ConfirmationDecision =
  | { outcome: 'accept'; confirmation: Confirmation }
  | { outcome: 'refuse'; status: AnswerStatus; message: string; reason?: string }
  | { outcome: 'already-confirmed'; message: string };

const refuse = (status: AnswerStatus, message: string, reason?: string): ConfirmationDecision => ({
  outcome: 'refuse',
  status,
  message,
  ...(reason ? { reason } : {}),
});

/**
 * [89] Decides one confirmation on its delivery as read: `row` undefined when no such delivery;
 * `opened` the confirmation data opened with the delivery's key, or why it could not be opened (null
 * with no delivery).
 * Throws when the delivery's content row is missing, which only a broken database allows.
 */
export function decideConfirmation(
  row: ConfirmableDelivery | undefined,
  opened: Confirmation | Error | null,
  remoteAddress: string,
  now: Date,
): ConfirmationDecision {
  if (!row) return refuse(AnswerStatus.Unknown, 'no such delivery');
  // Nobody was sent a secret for a pending delivery; a withdrawn one was cancelled before anyone pulled it.
  if (row.status === 'pending') return refuse(AnswerStatus.Unknown, 'the delivery was not pulled yet', 'pending');
  if (row.status === 'withdrawn') return refuse(AnswerStatus.Expired, 'the delivery was withdrawn', 'withdrawn');
  if (!opened) return refuse(AnswerStatus.Unknown, 'no such delivery');
  if (opened instanceof Error) {
    const status = opened instanceof ProtocolError && opened.code === 'SEAL_INVALID' ? AnswerStatus.SealInvalid : AnswerStatus.Malformed;
    return refuse(status, opened.message);
  }
  if (row.status === 'confirmed')
    return { outcome: 'already-confirmed', message: `already confirmed at ${row.confirmedAt?.toISOString()}` };
  if (row.installationRevokedAt) {
    return refuse(
      AnswerStatus.ClientMismatch,
      `the installation this delivery was sealed to was revoked on ${row.installationRevokedAt.toISOString()}`,
      'installation revoked',
    );
  }
  if (!row.content) throw new Error(`content ${row.contentId} of delivery ${row.id} not found`);
  if (row.status === 'expired' || row.expiresAt.getTime() < now.getTime()) {
    return refuse(AnswerStatus.Expired, `the delivery expired at ${row.expiresAt.toISOString()}`);
  }
  // Client-sealed: the key fingerprint is the client. Anonymous: the requester's IP is, as in the patent.
  if (row.clientFingerprint ? opened.clientFingerprint !== row.clientFingerprint : remoteAddress !== row.requesterIp) {
    return refuse(AnswerStatus.ClientMismatch, 'this confirmation does not come from the client the content was delivered to');
  }
  if (opened.digests.length !== 1 || opened.digests[0] !== row.content.sha256) {
    return refuse(AnswerStatus.DigestMismatch, 'the saved content does not match the SHA-256 of what was sent');
  }
  return { outcome: 'accept', confirmation: opened };
}

/** A confirmation frame's sealed confirmation, or the "malformed" refusal of a frame that is none. */
export function readConfirmationFrame(frame: Frame): SealedConfirmation | { status: AnswerStatus.Malformed; message: string } {
  if (frame.type !== FrameType.Confirmation)
    return { status: AnswerStatus.Malformed, message: `frame type ${frame.type} is not a confirmation` };
  try {
    return decodeConfirmationFrame(frame);
  } catch (error) {
    return { status: AnswerStatus.Malformed, message: (error as Error).message };
  }
}
