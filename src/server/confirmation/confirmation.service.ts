import { Injectable, Logger } from '@nestjs/common';
import { Answer, AnswerStatus, answerStatusName, NO_DELIVERY_ID } from '../../protocol/answer.js';
import { Confirmation, decodeConfirmationFrame, openConfirmation, SealedConfirmation } from '../../protocol/confirmation.js';
import { ProtocolError } from '../../protocol/errors.js';
import { Frame } from '../../protocol/frame.js';
import { signReceipt } from '../../protocol/receipt.js';
import { Content } from '../contents/content.entity.js';
import { DeliveriesService } from '../deliveries/deliveries.service.js';
import type { RecordingTransaction } from '../deliveries/delivery-events.bus.js';
import { Delivery } from '../deliveries/delivery.entity.js';
import { ServerKeysService } from '../keys/server-keys.service.js';

/** A refusal with the reason recorded in the audit trail. */
class Refusal {
  constructor(
    readonly status: AnswerStatus,
    readonly message: string,
  ) {}
}

/** [89] → [872]: checks one confirmation and records the outcome. */
@Injectable()
export class ConfirmationService {
  private readonly logger = new Logger(ConfirmationService.name);

  constructor(
    private readonly deliveries: DeliveriesService,
    private readonly keys: ServerKeysService,
  ) {}

  async handle(frame: Frame, remoteAddress: string): Promise<Answer> {
    let sealed: SealedConfirmation;
    try {
      sealed = decodeConfirmationFrame(frame);
    } catch (error) {
      return this.refuseUnknown(NO_DELIVERY_ID, remoteAddress, AnswerStatus.Malformed, (error as Error).message);
    }
    try {
      return await this.deliveries.transaction((tx) => this.confirm(tx, sealed, remoteAddress));
    } catch (error) {
      // The database went away or timed out: the client may try again; nothing was changed.
      this.logger.error(`confirmation of ${sealed.deliveryId} could not be processed: ${(error as Error).message}`);
      return { status: AnswerStatus.TryLater, deliveryId: sealed.deliveryId, message: 'the server cannot record confirmations right now; try again later', receipt: null };
    }
  }

  private async confirm(tx: RecordingTransaction, sealed: SealedConfirmation, remoteAddress: string): Promise<Answer> {
    const { manager, record } = tx;
    // Row lock: two confirmations of one delivery are decided one after the other.
    const delivery = await manager
      .getRepository(Delivery)
      .createQueryBuilder('d')
      .addSelect(['d.confirmKey', 'd.receipt'])
      .where('d.id = :id', { id: sealed.deliveryId })
      .setLock('pessimistic_write')
      .getOne();
    if (!delivery) {
      await record({ deliveryId: null, type: 'refused', reason: answerStatusName(AnswerStatus.Unknown), remoteAddress, detail: { claimedDeliveryId: sealed.deliveryId } });
      return refusalAnswer(sealed.deliveryId, new Refusal(AnswerStatus.Unknown, 'no such delivery'));
    }

    let confirmation: Confirmation;
    try {
      confirmation = openConfirmation(sealed, delivery.confirmKey);
    } catch (error) {
      const status = error instanceof ProtocolError && error.code === 'SEAL_INVALID' ? AnswerStatus.SealInvalid : AnswerStatus.Malformed;
      return this.refuse(tx, delivery, remoteAddress, new Refusal(status, (error as Error).message));
    }

    if (delivery.status === 'confirmed') {
      return { status: AnswerStatus.AlreadyConfirmed, deliveryId: delivery.id, message: `already confirmed at ${delivery.confirmedAt?.toISOString()}`, receipt: delivery.receipt };
    }
    const content = await manager.findOneByOrFail(Content, { id: delivery.contentId });
    const refusal = this.check(delivery, content, confirmation, remoteAddress);
    if (refusal) return this.refuse(tx, delivery, remoteAddress, refusal);

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
    await manager.update(Delivery, { id: delivery.id }, { status: 'confirmed', confirmedAt, confirmedFrom: remoteAddress, receipt });
    await record({ deliveryId: delivery.id, type: 'confirmed', remoteAddress, detail: { clientFingerprint: confirmation.clientFingerprint } });
    return { status: AnswerStatus.Accepted, deliveryId: delivery.id, message: 'delivery confirmed', receipt };
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

  private async refuse(tx: RecordingTransaction, delivery: Delivery, remoteAddress: string, refusal: Refusal): Promise<Answer> {
    await tx.record({ deliveryId: delivery.id, type: 'refused', reason: answerStatusName(refusal.status), remoteAddress, detail: { message: refusal.message } });
    return refusalAnswer(delivery.id, refusal);
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
