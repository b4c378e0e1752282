import {
  BadRequestException,
  ConflictException,
  ForbiddenException,
  GoneException,
  Injectable,
  NotFoundException,
  OnModuleInit,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Answer, AnswerStatus, answerStatusName, encodeAnswer } from '../../protocol/answer.js';
import { readConfirmationFrame } from '../confirmation/confirmation-decision.js';
import { ConfirmationService } from '../confirmation/confirmation.service.js';
import { AppConfig } from '../config/app-config.js';
import { ContentsService } from '../contents/contents.service.js';
import { BundlesService } from '../deliveries/bundles.service.js';
import { DeliveriesService, SealedDelivery } from '../deliveries/deliveries.service.js';
import { DeliveryEventRepository } from '../deliveries/delivery-event.repository.js';
import { Delivery } from '../deliveries/delivery.entity.js';
import { DeliveryRepository } from '../deliveries/delivery.repository.js';
import { UnitOfWork } from '../deliveries/unit-of-work.js';
import type { RecipientPrincipal } from '../recipients/request-auth.service.js';
import { ackRefusal, oneFrame } from './inbox-ack.js';
import { InboxRepository, InboxRow, LeaseResult } from './inbox.repository.js';
import { InboxStreamsService } from './inbox-streams.service.js';
import { InboxAckDto, InboxNextDto } from './dto/next.dto.js';

/**
 * Tries of one `next` when the delivery it chose was leased by a concurrent call first (see LEASE_SQL): each lost
 * try means another call leased one, so a few suffice; then it answers with what it has.
 */
const LEASE_TRIES = 4;

/** The answer of POST /api/inbox/next (docs/design/resident-agent.md §3). */
export interface NextView {
  acked: { deliveryId: string; status: string; answer: string } | null;
  next: (InboxItem & { leaseExpiresAt: Date }) | null;
  waiting: number;
}

type InboxItem = InboxRow & { bundleUrl: string };

/** A recipient's side of distributions: what waits for it, and its personal bundle links. */
@Injectable()
export class InboxService implements OnModuleInit {
  /** The one ConfirmationService of the server (its batches), resolved at init: see onModuleInit. */
  private confirmations!: ConfirmationService;

  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly streams: InboxStreamsService,
    private readonly config: AppConfig,
    private readonly inbox: InboxRepository,
    private readonly contents: ContentsService,
    private readonly deliveries: DeliveriesService,
    private readonly deliveryRows: DeliveryRepository,
    private readonly events: DeliveryEventRepository,
    private readonly bundles: BundlesService,
    private readonly unitOfWork: UnitOfWork,
  ) {}

  /**
   * ConfirmationModule does not export its service (src/server/confirmation is another part's): the instance is
   * looked up in the whole container, so that acks share the TCP port's batches instead of running a second copy.
   */
  onModuleInit(): void {
    this.confirmations = this.moduleRef.get(ConfirmationService, { strict: false });
  }

  async list(principal: RecipientPrincipal): Promise<{ items: InboxItem[] }> {
    const rows = await this.inbox.list(principal.recipientId, principal.fingerprint);
    return { items: rows.map((row) => this.item(row)) };
  }

  /** GET /api/inbox/events: the installation's push-notice stream (InboxStreamsService). */
  openEvents(principal: RecipientPrincipal, req: IncomingMessage, res: ServerResponse): void {
    this.streams.open(principal, req, res);
  }

  /**
   * POST /api/inbox/next, acquire next with deletion: the ack's confirmation decided by ConfirmationService (once
   * confirmed the delivery leaves the inbox and its lease is released), then the next waiting delivery leased.
   * A refused ack answers its refusal and keeps its lease: the delivery returns when the lease expires.
   */
  async next(principal: RecipientPrincipal, dto: InboxNextDto, address: string): Promise<NextView> {
    const answer = dto.ack ? await this.ack(principal, dto.ack, address) : null;
    const confirmed = answer !== null && (answer.status === AnswerStatus.Accepted || answer.status === AnswerStatus.AlreadyConfirmed);
    const release = confirmed ? dto.ack!.deliveryId : null;
    const seconds = dto.leaseSeconds ?? this.config.inboxLeaseSeconds;
    let result: LeaseResult = { leased: null, lost: false, waiting: 0 };
    for (let tries = 0; tries < LEASE_TRIES; tries++) {
      result = await this.inbox.lease(principal.recipientId, principal.fingerprint, seconds, release);
      if (!result.lost) break;
    }
    return {
      acked: answer && {
        deliveryId: dto.ack!.deliveryId,
        status: answerStatusName(answer.status),
        answer: encodeAnswer(answer).toString('base64'),
      },
      next: result.leased && { ...this.item(result.leased), leaseExpiresAt: result.leased.leaseExpiresAt! },
      waiting: Math.max(0, result.waiting),
    };
  }

  /** The ack's confirmation, decided as one sent to the confirmation port, after the inbox's own checks. */
  private async ack(principal: RecipientPrincipal, ack: InboxAckDto, address: string): Promise<Answer> {
    const frame = oneFrame(Buffer.from(ack.confirmation, 'base64'), this.config.confirmMaxFrameBytes);
    if (typeof frame === 'string') return this.confirmations.refuseMalformed(address, frame);
    const sealed = readConfirmationFrame(frame);
    const delivery = await this.deliveryRows.findOne(ack.deliveryId);
    const refusal = ackRefusal(delivery, principal, ack.deliveryId, 'deliveryId' in sealed ? sealed.deliveryId : null);
    if (refusal) {
      await this.refuse(delivery ? ack.deliveryId : null, refusal.reason, address, principal, ack.deliveryId);
      throw refusal.status === 404
        ? new NotFoundException(refusal.message)
        : refusal.status === 403
          ? new ForbiddenException(refusal.message)
          : new BadRequestException(refusal.message);
    }
    return this.confirmations.handle(frame, address);
  }

  private item(row: InboxRow): InboxItem {
    return { ...row, bundleUrl: `${this.config.publicUrl}${location(row.deliveryId)}` };
  }

  /** GET: the first pull seals a pending delivery to the asking installation; later pulls (and ranges) get the same bytes. */
  async send(principal: RecipientPrincipal, id: string, address: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const delivery = await this.addressed(principal, id, address);
    const content = await this.contents.findLive(delivery.contentId);
    let sealed: SealedDelivery | null = delivery.pluginData ? (delivery as SealedDelivery) : null;
    if (delivery.status === 'pending') {
      const ref = { id: delivery.id, distributionId: delivery.distributionId!, recipientId: delivery.recipientId! };
      sealed = await this.deliveries.sealPending(ref, content, { address, clientKey: principal.publicKey });
      // Another pull sealed it first: read what it sealed, and refuse if that was another installation.
      sealed ??= (await this.addressed(principal, id, address)) as SealedDelivery;
    }
    await this.bundles.sendRecipient(sealed!, content, location(id), req, res);
  }

  async head(principal: RecipientPrincipal, id: string, address: string, res: ServerResponse): Promise<void> {
    const delivery = await this.addressed(principal, id, address);
    const content = await this.contents.findLive(delivery.contentId);
    await this.bundles.headRecipient(delivery.pluginData ? (delivery as SealedDelivery) : null, content, location(id), res);
  }

  /** The delivery if this installation may pull it; each refusal a `refused` event with its reason. */
  private async addressed(principal: RecipientPrincipal, id: string, address: string): Promise<Delivery> {
    const delivery = await this.deliveryRows.findOne(id, { pluginData: true });
    if (!delivery || !delivery.recipientId) throw new NotFoundException(`no delivery ${id} in your inbox`);
    if (delivery.recipientId !== principal.recipientId) {
      await this.refuse(id, 'another recipient', address, principal);
      throw new ForbiddenException(`delivery ${id} is addressed to another recipient`);
    }
    if (delivery.status === 'withdrawn' || delivery.superseded) {
      const why = delivery.status === 'withdrawn' ? 'withdrawn' : 'superseded';
      await this.refuse(id, why, address, principal);
      throw new GoneException(
        `delivery ${id} was ${why === 'withdrawn' ? 'withdrawn: its distribution was cancelled' : 'superseded by a re-send; see GET /api/inbox'}`,
      );
    }
    if (delivery.status !== 'pending' && delivery.clientFingerprint !== principal.fingerprint) {
      await this.refuse(id, 'another installation', address, principal);
      throw new ConflictException(`delivery ${id} was already pulled by another installation (${delivery.clientFingerprint})`);
    }
    if (delivery.status === 'expired') throw new GoneException(`delivery ${id} expired at ${delivery.expiresAt.toISOString()}`);
    return delivery;
  }

  /** A refusal of the inbox; `id` null when no such delivery exists (the claimed id is in the detail). */
  private async refuse(id: string | null, reason: string, address: string, principal: RecipientPrincipal, claimed?: string): Promise<void> {
    const detail = { fingerprint: principal.fingerprint, recipientId: principal.recipientId };
    await this.unitOfWork.statement((work) =>
      this.events.append(work, [
        {
          deliveryId: id,
          type: 'refused',
          reason,
          remoteAddress: address,
          detail: id === null && claimed ? { ...detail, claimedDeliveryId: claimed } : detail,
        },
      ]),
    );
  }
}

/** The personal link of a recipient's delivery. */
function location(id: string): string {
  return `/api/inbox/${id}/bundle`;
}
