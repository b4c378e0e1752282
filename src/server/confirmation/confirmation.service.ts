import { Injectable, Logger } from '@nestjs/common';
import { Answer, AnswerStatus, answerStatusName, NO_DELIVERY_ID } from '../../protocol/answer.js';
import { Confirmation, decodeConfirmationFrame, openConfirmation, SealedConfirmation } from '../../protocol/confirmation.js';
import { ProtocolError } from '../../protocol/errors.js';
import { Frame } from '../../protocol/frame.js';
import { signReceipt } from '../../protocol/receipt.js';
import type { Content } from '../contents/content.entity.js';
import { DeliveriesService } from '../deliveries/deliveries.service.js';
import { EventInput, eventCtesOfParameters, RecordingTransaction } from '../deliveries/delivery-events.bus.js';
import type { Delivery, DeliveryStatus } from '../deliveries/delivery.entity.js';
import { GroupCommit } from '../deliveries/group-commit.js';
import { ServerKeysService } from '../keys/server-keys.service.js';

/**
 * The deliveries named by a batch, locked in id order, with what the decision needs of their contents
 * (NULL for a deleted content, as a lookup of live contents would find none).
 */
const LOCK_DELIVERIES_SQL = `
  SELECT d.id, d.content_id, d.status, d.client_fingerprint, d.requester_ip, d.confirm_key, d.receipt,
         d.issued_at, d.sent_at, d.expires_at, d.confirmed_at, c.name AS content_name, c.size AS content_size, c.sha256 AS content_sha256
    FROM deliveries d LEFT JOIN contents c ON c.id = d.content_id AND c.deleted_at IS NULL
   WHERE d.id = ANY ($1::uuid[])
   ORDER BY d.id
     FOR UPDATE OF d`;

interface LockedRow {
  id: string;
  content_id: string;
  status: DeliveryStatus;
  client_fingerprint: string | null;
  requester_ip: string;
  confirm_key: Buffer;
  receipt: Buffer | null;
  issued_at: Date;
  sent_at: Date | null;
  expires_at: Date;
  confirmed_at: Date | null;
  content_name: string | null;
  content_size: string | null;
  content_sha256: string | null;
}

/** What a confirmation decision reads and writes of a delivery. */
type LockedDelivery = Pick<
  Delivery,
  'id' | 'contentId' | 'status' | 'clientFingerprint' | 'requesterIp' | 'confirmKey' | 'receipt' | 'issuedAt' | 'sentAt' | 'expiresAt' | 'confirmedAt' | 'confirmedFrom'
>;

type LockedContent = Pick<Content, 'name' | 'size' | 'sha256'>;

function lockedDelivery(row: LockedRow): LockedDelivery {
  return {
    id: row.id,
    contentId: row.content_id,
    status: row.status,
    clientFingerprint: row.client_fingerprint,
    requesterIp: row.requester_ip,
    confirmKey: row.confirm_key,
    receipt: row.receipt,
    issuedAt: row.issued_at,
    sentAt: row.sent_at,
    expiresAt: row.expires_at,
    confirmedAt: row.confirmed_at,
    confirmedFrom: null,
  };
}

function lockedContent(row: LockedRow): LockedContent {
  return { name: row.content_name!, size: Number(row.content_size), sha256: row.content_sha256! };
}

/** The accepted confirmations of a batch (parameters 1–4) and its events (5–9) in one statement. */
const CONFIRM_SQL = `
  WITH confirmed AS (
    UPDATE deliveries d SET status = 'confirmed', confirmed_at = v.confirmed_at, confirmed_from = v.confirmed_from, receipt = v.receipt
      FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::bytea[]) AS v(id, confirmed_at, confirmed_from, receipt)
     WHERE d.id = v.id
  ), ${eventCtesOfParameters(5)}
  SELECT id, at FROM event ORDER BY id`;

/** A refusal with the reason recorded in the audit trail. */
class Refusal {
  constructor(
    readonly status: AnswerStatus,
    readonly message: string,
  ) {}
}

interface Pending {
  sealed: SealedConfirmation;
  remoteAddress: string;
}

/** [89] → [872]: checks confirmations and records the outcomes. */
@Injectable()
export class ConfirmationService {
  private readonly logger = new Logger(ConfirmationService.name);

  constructor(
    private readonly deliveries: DeliveriesService,
    private readonly keys: ServerKeysService,
  ) {}

  /**
   * Confirmations arriving while earlier ones are being written are decided together in one
   * transaction (one commit for many); each answer is sent only after its outcome committed.
   */
  private readonly batches = new GroupCommit<Pending, Answer>((items) => this.deliveries.transaction((tx) => this.confirm(tx, items)));

  async handle(frame: Frame, remoteAddress: string): Promise<Answer> {
    let sealed: SealedConfirmation;
    try {
      sealed = decodeConfirmationFrame(frame);
    } catch (error) {
      return this.refuseUnknown(NO_DELIVERY_ID, remoteAddress, AnswerStatus.Malformed, (error as Error).message);
    }
    try {
      return await this.batches.submit({ sealed, remoteAddress });
    } catch (error) {
      // The database went away or timed out: the client may try again; nothing was changed.
      this.logger.error(`confirmation of ${sealed.deliveryId} could not be processed: ${(error as Error).message}`);
      return { status: AnswerStatus.TryLater, deliveryId: sealed.deliveryId, message: 'the server cannot record confirmations right now; try again later', receipt: null };
    }
  }

  /**
   * Decides confirmations in order, as if one after the other, with two statements for all of them
   * inside the transaction: the locked deliveries with their contents, then the updates with their events.
   */
  private async confirm(tx: RecordingTransaction, items: Pending[]): Promise<Answer[]> {
    const { manager } = tx;
    // Row locks, taken in id order: two confirmations of one delivery are decided one after the other.
    const ids = [...new Set(items.map(({ sealed }) => sealed.deliveryId))].sort();
    const locked = (await manager.query(LOCK_DELIVERIES_SQL, [ids])) as LockedRow[];
    const deliveries = new Map(locked.map((row) => [row.id, lockedDelivery(row)]));
    const contents = new Map(locked.filter((row) => row.content_name !== null).map((row) => [row.content_id, lockedContent(row)]));

    const events: EventInput[] = [];
    const accepted: LockedDelivery[] = [];
    const answers = items.map(({ sealed, remoteAddress }) => {
      const delivery = deliveries.get(sealed.deliveryId);
      if (!delivery) {
        events.push({ deliveryId: null, type: 'refused', reason: answerStatusName(AnswerStatus.Unknown), remoteAddress, detail: { claimedDeliveryId: sealed.deliveryId } });
        return refusalAnswer(sealed.deliveryId, new Refusal(AnswerStatus.Unknown, 'no such delivery'));
      }
      const refuse = (refusal: Refusal) => {
        events.push({ deliveryId: delivery.id, type: 'refused', reason: answerStatusName(refusal.status), remoteAddress, detail: { message: refusal.message } });
        return refusalAnswer(delivery.id, refusal);
      };

      let confirmation: Confirmation;
      try {
        confirmation = openConfirmation(sealed, delivery.confirmKey);
      } catch (error) {
        const status = error instanceof ProtocolError && error.code === 'SEAL_INVALID' ? AnswerStatus.SealInvalid : AnswerStatus.Malformed;
        return refuse(new Refusal(status, (error as Error).message));
      }

      if (delivery.status === 'confirmed') {
        return { status: AnswerStatus.AlreadyConfirmed, deliveryId: delivery.id, message: `already confirmed at ${delivery.confirmedAt?.toISOString()}`, receipt: delivery.receipt };
      }
      const content = contents.get(delivery.contentId);
      if (!content) throw new Error(`content ${delivery.contentId} of delivery ${delivery.id} not found`);
      const refusal = this.check(delivery, content, confirmation, remoteAddress);
      if (refusal) return refuse(refusal);

      const confirmedAt = new Date();
      const receipt = signReceipt(
        {
          keyId: this.keys.current.keyId,
          deliveryId: delivery.id,
          clientFingerprint: delivery.clientFingerprint,
          requesterAddress: delivery.requesterIp,
          issuedAt: delivery.issuedAt,
          sentAt: delivery.sentAt,
          confirmedAt,
          files: [{ name: content.name, size: content.size, sha256: content.sha256 }],
        },
        this.keys.current,
      );
      // Later confirmations of this delivery in the same batch see it confirmed.
      Object.assign(delivery, { status: 'confirmed', confirmedAt, confirmedFrom: remoteAddress, receipt });
      accepted.push(delivery);
      events.push({ deliveryId: delivery.id, type: 'confirmed', remoteAddress, detail: { clientFingerprint: confirmation.clientFingerprint } });
      return { status: AnswerStatus.Accepted, deliveryId: delivery.id, message: 'delivery confirmed', receipt };
    });

    if (accepted.length > 0 || events.length > 0) {
      await tx.writeEvents(
        CONFIRM_SQL,
        [accepted.map((d) => d.id), accepted.map((d) => d.confirmedAt), accepted.map((d) => d.confirmedFrom), accepted.map((d) => d.receipt)],
        events,
      );
    }
    return answers;
  }

  private check(delivery: LockedDelivery, content: LockedContent, confirmation: Confirmation, remoteAddress: string): Refusal | null {
    if (delivery.status === 'expired' || delivery.expiresAt.getTime() < Date.now()) {
      return new Refusal(AnswerStatus.Expired, `the delivery expired at ${delivery.expiresAt.toISOString()}`);
    }
    // Client-sealed: the key fingerprint is the client. Anonymous: the requester's IP is, as in the patent.
    if (delivery.clientFingerprint ? confirmation.clientFingerprint !== delivery.clientFingerprint : remoteAddress !== delivery.requesterIp) {
      return new Refusal(AnswerStatus.ClientMismatch, 'this confirmation does not come from the client the content was delivered to');
    }
    if (confirmation.digests.length !== 1 || confirmation.digests[0] !== content.sha256) {
      return new Refusal(AnswerStatus.DigestMismatch, 'the saved content does not match the SHA-256 of what was sent');
    }
    return null;
  }

  /** Refusals that name no delivery are still part of the audit trail. */
  async refuseUnknown(deliveryId: string, remoteAddress: string, status: AnswerStatus, message: string): Promise<Answer> {
    try {
      await this.deliveries.transaction(({ record }) =>
        record({ deliveryId: null, type: 'refused', reason: answerStatusName(status), remoteAddress, detail: { message } }),
      );
    } catch (error) {
      this.logger.error(`could not record a refused confirmation: ${(error as Error).message}`);
    }
    return refusalAnswer(deliveryId, new Refusal(status, message));
  }
}

function refusalAnswer(deliveryId: string, refusal: Refusal): Answer {
  return { status: refusal.status, deliveryId, message: refusal.message, receipt: null };
}
