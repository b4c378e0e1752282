import { BufferReader } from './buffer-reader.js';
import { BufferWriter } from './buffer-writer.js';
import { DELIVERY_ID_SIZE, FrameType } from './constants.js';
import { ProtocolError } from './errors.js';
import { Frame, serializeFrame } from './frame.js';
import { deliveryIdToBytes, deliveryIdToString } from './delivery-id.js';

/** The server's answer to a confirmation. */
export const enum AnswerStatus {
  Accepted = 0,
  AlreadyConfirmed = 1,
  Unknown = 2,
  Expired = 3,
  ClientMismatch = 4,
  DigestMismatch = 5,
  Malformed = 6,
  TryLater = 7,
  /** The confirmation did not open with the delivery's secret. */
  SealInvalid = 8,
}

const STATUS_NAMES: Record<AnswerStatus, string> = {
  [AnswerStatus.Accepted]: 'accepted',
  [AnswerStatus.AlreadyConfirmed]: 'already_confirmed',
  [AnswerStatus.Unknown]: 'unknown',
  [AnswerStatus.Expired]: 'expired',
  [AnswerStatus.ClientMismatch]: 'client_mismatch',
  [AnswerStatus.DigestMismatch]: 'digest_mismatch',
  [AnswerStatus.Malformed]: 'malformed',
  [AnswerStatus.TryLater]: 'try_later',
  [AnswerStatus.SealInvalid]: 'seal_invalid',
};

export function answerStatusName(status: AnswerStatus): string {
  return STATUS_NAMES[status] ?? `status_${status as number}`;
}

export interface Answer {
  status: AnswerStatus;
  /** All zeros when the frame was too broken to name one. */
  deliveryId: string;
  message: string;
  /** Signed receipt, present for accepted and already confirmed. */
  receipt: Buffer | null;
}

export const NO_DELIVERY_ID = deliveryIdToString(Buffer.alloc(DELIVERY_ID_SIZE));

export function encodeAnswer(answer: Answer): Buffer {
  const receipt = answer.receipt ?? Buffer.alloc(0);
  if (receipt.length > 0xffff) throw new ProtocolError('TOO_LARGE', 'receipt longer than 65535 bytes');
  const body = new BufferWriter(64 + receipt.length)
    .addUInt8(answer.status)
    .addFixed(deliveryIdToBytes(answer.deliveryId), DELIVERY_ID_SIZE)
    .addString(answer.message)
    .addUInt16(receipt.length)
    .addBytes(receipt)
    .flush();
  return serializeFrame(FrameType.Answer, body);
}

export function decodeAnswer(frame: Frame): Answer {
  if (frame.type !== FrameType.Answer) throw new ProtocolError('MALFORMED', `expected an answer frame, got type ${frame.type}`);
  const reader = new BufferReader(frame.body, 'answer');
  const status = reader.uint8('status');
  if (!(status in STATUS_NAMES)) throw new ProtocolError('MALFORMED', `unknown answer status ${status}`);
  const deliveryId = deliveryIdToString(reader.bytes(DELIVERY_ID_SIZE, 'delivery id'));
  const message = reader.string('message');
  const receiptLength = reader.uint16('receipt length');
  const receipt = receiptLength ? Buffer.from(reader.bytes(receiptLength, 'receipt')) : null;
  reader.end();
  return { status: status, deliveryId, message, receipt };
}
