import { Injectable, Logger } from '@nestjs/common';
import { Answer, AnswerStatus, answerStatusName, NO_DELIVERY_ID } from '../../protocol/answer.js';
import { Confirmation, openConfirmation, SealedConfirmation } from '../../protocol/confirmation.js';
import { Frame, FrameParser } from '../../protocol/frame.js';
import { ReceiptFields, signReceipts } from '../../protocol/receipt.js';
import { AppConfig } from '../config/app-config.js';
import { DeliveryEventRepository } from '../deliveries/delivery-event.repository.js';
import type { EventInput } from '../deliveries/delivery-events.bus.js';
import { GroupCommit } from '../deliveries/group-commit.js';
import { UnitOfWork, Work } from '../deliveries/unit-of-work.js';
import { ServerKeysService } from '../keys/server-keys.service.js';
import { ConfirmableDelivery, ConfirmationDecision, decideConfirmation, readConfirmationFrame } from './confirmation-decision.js';
import { Acceptance, ConfirmationRepository } from './confirmation.repository.js';

/** Batches in flight at once, as a pipeline (see GroupCommit): while one is written, the next reads and decides. */
const PIPELINED_BATCHES = 2;

interface Pending {
  sealed: SealedConfirmation;
  remoteAddress: string;
}

/** An acceptance and the index of its item in the batch. */
type Accepted = Acceptance & { item: number };

/** The outcome of a batch's decisions, before anything is written. */
interface Decisions {
  /** One per item, in order. */
  answers: Answer[];
  /** Accepted confirmations, in item order, with their signed receipts. */
  accepted: Accepted[];
  /** Audit-trail events, in item order: refusals and acceptances (an "already confirmed" answer records none). */
  events: EventInput[];
}

/** [89] → [872]: checks confirmations and records the outcomes. */
@Injectable()
export class ConfirmationService {
  private readonly logger = new Logger(ConfirmationService.name);

  /**
   * Confirmations arriving while earlier ones are being written are decided together (one commit for
   * many); each answer is sent only after its outcome committed.
   */
  private readonly batches = new GroupCommit<Pending, Answer>((items, handOver) => this.confirm(items, handOver), PIPELINED_BATCHES);

  constructor(
    private readonly repository: ConfirmationRepository,
    private readonly events: DeliveryEventRepository,
    private readonly unitOfWork: UnitOfWork,
    private readonly keys: ServerKeysService,
    private readonly config: AppConfig,
  ) {}

  /** Answers one frame: a confirmation is decided in the next batch; any other frame is malformed. */
  async handle(frame: Frame, remoteAddress: string): Promise<Answer> {
    const sealed = readConfirmationFrame(frame);
    if ('status' in sealed) return this.refuseMalformed(remoteAddress, sealed.message);
    try {
      return await this.batches.submit({ sealed, remoteAddress });
    } catch (error) {
      return this.tryLater(sealed.deliveryId, error);
    }
  }

  /**
   * A confirmation POSTed over HTTP (PROTOCOL.md §4.1): the body is exactly one frame, decided as one sent to
   * the TCP port; anything else is malformed.
   */
  async handleBody(body: Buffer, remoteAddress: string): Promise<Answer> {
    const parser = new FrameParser(this.config.confirmMaxFrameBytes);
    const frames: Frame[] = [];
    try {
      parser.parse(body, (frame) => frames.push(frame));
    } catch (error) {
      return this.refuseMalformed(remoteAddress, (error as Error).message);
    }
    if (frames.length !== 1 || parser.pending !== 0) {
      const message = frames.length === 0 ? 'the body is not a whole confirmation frame' : 'the body holds more than one frame';
      return this.refuseMalformed(remoteAddress, message);
    }
    return this.handle(frames[0], remoteAddress);
  }

  /** Bytes that are no frame: refused, and still part of the audit trail. */
  async refuseMalformed(remoteAddress: string, message: string): Promise<Answer> {
    const status = AnswerStatus.Malformed;
    try {
      await this.unitOfWork.transaction((work) =>
        this.events.append(work, [
          { deliveryId: null, type: 'refused', reason: answerStatusName(status), remoteAddress, detail: { message } },
        ]),
      );
    } catch (error) {
      this.logger.error(`could not record a refused confirmation: ${(error as Error).message}`);
    }
    return { status, deliveryId: NO_DELIVERY_ID, message, receipt: null };
  }

  /** The database went away or timed out: the client may try again; nothing was changed. */
  private tryLater(deliveryId: string, error: unknown): Answer {
    this.logger.error(`confirmation of ${deliveryId} could not be processed: ${(error as Error).message}`);
    return {
      status: AnswerStatus.TryLater,
      deliveryId,
      message: 'the server cannot record confirmations right now; try again later',
      receipt: null,
    };
  }

  /**
   * Decides a batch on the deliveries as read (no lock, no transaction), then writes every outcome in
   * one autocommit statement that confirms a delivery only if its status is still the one read: two
   * round trips and one commit for the batch. A delivery changed in between (a "sent" mark, the expiry
   * sweep, a confirmation elsewhere) is not confirmed by it; its confirmations are then decided again
   * on the locked row (`confirmLocked`). Refusals and "already confirmed" rest on what does not change
   * once read (keys, client, digests, expiry time, a final status), so they stand.
   */
  private async confirm(items: Pending[], handOver: () => void): Promise<Answer[]> {
    const ids = [...new Set(items.map(({ sealed }) => sealed.deliveryId))];
    const { decisions, confirmed } = await this.repository.onOneConnection(async (connection) => {
      const decided = this.decide(items, await this.repository.read(connection, ids));
      // Decided: the next batch may gather and start while this one is written.
      handOver();
      if (decided.events.length === 0) return { decisions: decided, confirmed: new Set<string | null>() };
      const written = await this.unitOfWork.statement(
        (work) => this.repository.confirmIfUnchanged(work, decided.accepted, decided.events),
        connection,
      );
      return { decisions: decided, confirmed: written };
    });
    return this.redecideLost(items, decisions, confirmed);
  }

  /**
   * A lost acceptance: that confirmation and the later ones of its delivery in this batch (answered
   * "already confirmed" by it, recording nothing) are decided again, after what was written committed.
   */
  private async redecideLost(items: Pending[], { answers, accepted }: Decisions, confirmed: Set<string | null>): Promise<Answer[]> {
    const lost = new Map(accepted.filter(({ id }) => !confirmed.has(id)).map(({ id, item }) => [id, item]));
    if (lost.size === 0) return answers;
    const again = items.flatMap((pending, i) => (i >= (lost.get(pending.sealed.deliveryId) ?? Infinity) ? [i] : []));
    try {
      const redecided = await this.unitOfWork.transaction((work) =>
        this.confirmLocked(
          work,
          again.map((i) => items[i]),
        ),
      );
      again.forEach((i, k) => (answers[i] = redecided[k]!));
    } catch (error) {
      // The rest of the batch is committed: only these may be tried again by their clients.
      for (const i of again) answers[i] = this.tryLater(items[i].sealed.deliveryId, error);
    }
    return answers;
  }

  /** Decides confirmations on their deliveries locked in id order, then writes the outcomes, inside `work`. */
  private async confirmLocked(work: Work, items: Pending[]): Promise<Answer[]> {
    const locked = await this.repository.lock(work, [...new Set(items.map(({ sealed }) => sealed.deliveryId))]);
    const { answers, accepted, events } = this.decide(items, locked);
    if (events.length > 0) await this.repository.confirm(work, accepted, events);
    return answers;
  }

  /**
   * Decides confirmations in order, as if one after the other, on the deliveries' rows: a delivery
   * accepted by one item is confirmed for the later ones. The batch's receipts cost one signature
   * (unless BATCH_SIGNATURES=false); each answer naming a delivery confirmed in it gets its receipt.
   */
  private decide(items: Pending[], rows: ConfirmableDelivery[]): Decisions {
    const deliveries = new Map(rows.map((row) => [row.id, row]));
    const events: EventInput[] = [];
    const accepts: Omit<Accepted, 'receipt'>[] = [];
    const receipts: ReceiptFields[] = [];
    const answers = items.map(({ sealed, remoteAddress }, item): Answer => {
      const row = deliveries.get(sealed.deliveryId);
      const now = new Date();
      const decision = decideConfirmation(row, open(sealed, row), remoteAddress, now);
      if (decision.outcome === 'refuse') {
        events.push(refusalEvent(row, sealed, decision, remoteAddress));
        return { status: decision.status, deliveryId: row?.id ?? sealed.deliveryId, message: decision.message, receipt: null };
      }
      if (decision.outcome === 'already-confirmed') {
        return { status: AnswerStatus.AlreadyConfirmed, deliveryId: row!.id, message: decision.message, receipt: row!.receipt };
      }
      const delivery = row!;
      receipts.push(this.receiptFields(delivery, now));
      accepts.push({ id: delivery.id, confirmedAt: now, confirmedFrom: remoteAddress, was: delivery.status, item });
      events.push({
        deliveryId: delivery.id,
        type: 'confirmed',
        remoteAddress,
        detail: { clientFingerprint: decision.confirmation.clientFingerprint },
        sentAt: delivery.sentAt,
      });
      Object.assign(delivery, { status: 'confirmed', confirmedAt: now, receipt: null });
      return { status: AnswerStatus.Accepted, deliveryId: delivery.id, message: 'delivery confirmed', receipt: null };
    });
    const signed = signReceipts(receipts, this.keys.current, this.config.batchSignatures);
    const accepted = accepts.map((accept, i) => ({ ...accept, receipt: signed[i] }));
    for (const { id, receipt } of accepted) deliveries.get(id)!.receipt = receipt;
    for (const answer of answers) {
      const confirmed = answer.status === AnswerStatus.Accepted || answer.status === AnswerStatus.AlreadyConfirmed;
      if (confirmed) answer.receipt ??= deliveries.get(answer.deliveryId)!.receipt;
    }
    return { answers, accepted, events };
  }

  private receiptFields(delivery: ConfirmableDelivery, confirmedAt: Date): ReceiptFields {
    const { name, size, sha256 } = delivery.content!;
    return {
      keyId: this.keys.current.keyId,
      deliveryId: delivery.id,
      clientFingerprint: delivery.clientFingerprint,
      // Accepted only once sealed, and a sealed delivery has its requester (deliveries_sealed_check).
      requesterAddress: delivery.requesterIp!,
      issuedAt: delivery.issuedAt,
      sentAt: delivery.sentAt,
      confirmedAt,
      files: [{ name, size, sha256 }],
    };
  }
}

/** The confirmation data opened with its delivery's key, or why it could not be (null: no delivery). */
function open(sealed: SealedConfirmation, row: ConfirmableDelivery | undefined): Confirmation | Error | null {
  if (!row?.confirmKey) return null;
  try {
    return openConfirmation(sealed, row.confirmKey);
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** The audit-trail event of a refusal; one that names no delivery keeps the claimed id. */
function refusalEvent(
  row: ConfirmableDelivery | undefined,
  sealed: SealedConfirmation,
  refusal: ConfirmationDecision & { outcome: 'refuse' },
  remoteAddress: string,
): EventInput {
  const reason = refusal.reason ?? answerStatusName(refusal.status);
  if (!row) return { deliveryId: null, type: 'refused', reason, remoteAddress, detail: { claimedDeliveryId: sealed.deliveryId } };
  return { deliveryId: row.id, type: 'refused', reason, remoteAddress, detail: { message: refusal.message } };
}
