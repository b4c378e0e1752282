import { ConflictException, ForbiddenException, GoneException, Injectable, NotFoundException } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppConfig } from '../config/app-config.js';
import { ContentsService } from '../contents/contents.service.js';
import { BundlesService } from '../deliveries/bundles.service.js';
import { DeliveriesService, SealedDelivery } from '../deliveries/deliveries.service.js';
import { DeliveryEventRepository } from '../deliveries/delivery-event.repository.js';
import { Delivery } from '../deliveries/delivery.entity.js';
import { DeliveryRepository } from '../deliveries/delivery.repository.js';
import { UnitOfWork } from '../deliveries/unit-of-work.js';
import type { RecipientPrincipal } from '../recipients/request-auth.service.js';
import { InboxRepository } from './inbox.repository.js';

/** A recipient's side of distributions: what waits for it, and its personal bundle links. */
@Injectable()
export class InboxService {
  constructor(
    private readonly config: AppConfig,
    private readonly inbox: InboxRepository,
    private readonly contents: ContentsService,
    private readonly deliveries: DeliveriesService,
    private readonly deliveryRows: DeliveryRepository,
    private readonly events: DeliveryEventRepository,
    private readonly bundles: BundlesService,
    private readonly unitOfWork: UnitOfWork,
  ) {}

  async list(principal: RecipientPrincipal) {
    const rows = await this.inbox.list(principal.recipientId, principal.fingerprint);
    return { items: rows.map((row) => ({ ...row, bundleUrl: `${this.config.publicUrl}${location(row.deliveryId)}` })) };
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

  private async refuse(id: string, reason: string, address: string, principal: RecipientPrincipal): Promise<void> {
    await this.unitOfWork.statement((work) =>
      this.events.append(work, [
        {
          deliveryId: id,
          type: 'refused',
          reason,
          remoteAddress: address,
          detail: { fingerprint: principal.fingerprint, recipientId: principal.recipientId },
        },
      ]),
    );
  }
}

/** The personal link of a recipient's delivery. */
function location(id: string): string {
  return `/api/inbox/${id}/bundle`;
}
