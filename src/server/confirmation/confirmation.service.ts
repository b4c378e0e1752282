import { Injectable, Logger } from '@nestjs/common';
import { In } from 'typeorm';
import { Answer, AnswerStatus, answerStatusName, NO_DELIVERY_ID } from '../../protocol/answer.js';
import { Confirmation, decodeConfirmationFrame, openConfirmation, SealedConfirmation } from '../../protocol/confirmation.js';
import { ProtocolError } from '../../protocol/errors.js';
import { Frame } from '../../protocol/frame.js';
import { signReceipt } from '../../protocol/receipt.js';
import { Content } from '../contents/content.entity.js';
import { DeliveriesService } from '../deliveries/deliveries.service.js';
import type { EventInput, RecordingTransaction } from '../deliveries/delivery-events.bus.js';
import { Delivery } from '../deliveries/delivery.entity.js';
import { GroupCommit } from '../deliveries/group-commit.js';
import { ServerKeysService } from '../keys/server-keys.service.js';

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

  /** Decides confirmations in order, as if one after the other, with three statements for all of them. */
  private async confirm(tx: RecordingTransaction, items: Pending[]): Promise<Answer[]> {
    const { manager, recordMany } = tx;
    // Row locks, taken in id order: two confirmations of one delivery are decided one after the other.
    const ids = [...new Set(items.map(({ sealed }) => sealed.deliveryId))].sort();
    const locked = await manager
      .getRepository(Delivery)
      .createQueryBuilder('d')
      .addSelect(['d.confirmKey', 'd.receipt'])
      .where('d.id IN (:...ids)', { ids })
      .orderBy('d.id')
      .setLock('pessimistic_write')
      .getMany();
    const deliveries = new Map(locked.map((delivery) => [delivery.id, delivery]));
    const contentIds = [...new Set(locked.map((delivery) => delivery.contentId))];
    const contents = new Map((contentIds.length ? await manager.findBy(Content, { id: In(contentIds) }) : []).map((content) => [content.id, content]));

    const events: EventInput[] = [];
    const accepted: Delivery[] = [];
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

    if (accepted.length > 0) {
      await manager.query(
        `UPDATE deliveries d SET status = 'confirmed', confirmed_at = v.confirmed_at, confirmed_from = v.confirmed_from, receipt = v.receipt
           FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::bytea[]) AS v(id, confirmed_at, confirmed_from, receipt)
          WHERE d.id = v.id`,
        [accepted.map((d) => d.id), accepted.map((d) => d.confirmedAt), accepted.map((d) => d.confirmedFrom), accepted.map((d) => d.receipt)],
      );
    }
    await recordMany(events);
    return answers;
  }

  private check(delivery: Delivery, content: Content, confirmation: Confirmation, remoteAddress: string): Refusal | null {
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
