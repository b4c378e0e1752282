import { ConflictException, ForbiddenException, Injectable, NotFoundException } from '@nestjs/common';
import { fingerprint } from '../../protocol/keys.js';
import { receiptKeyId, verifyReceipt } from '../../protocol/receipt.js';
import { AppConfig } from '../config/app-config.js';
import { Content } from '../contents/content.entity.js';
import { ServerKeysService } from '../keys/server-keys.service.js';
import { DeliveryEventRepository } from './delivery-event.repository.js';
import { EventInput } from './delivery-events.bus.js';
import { DeliveryRepository, ExportCursor, SealedDelivery } from './delivery.repository.js';
import { GroupCommit } from './group-commit.js';
import { DeliveryDetailView, DeliveryView, toDeliveryView } from './dto/delivery.view.js';
import { DeliveryFilter, ListDeliveriesQuery } from './dto/list-deliveries.query.js';
import { ContentCompletionView, ContentCountsView, DeliveryReceiptView, ReissuedDeliveryView } from './dto/manager.views.js';
import { CSV_HEADER, csvRow } from './csv.js';
import { DeliverySealer } from './delivery-sealer.js';
import { issuedEvent, PendingDeliveryRef, PreparedDelivery, Requester } from './new-delivery.js';
import { UnitOfWork } from './unit-of-work.js';

export type { SealedDelivery } from './delivery.repository.js';
export type { Requester } from './new-delivery.js';

/** The media type of a receipt file (the signed bytes of PROTOCOL.md §5, what `dcx` keeps as `<deliveryId>.receipt`). */
export const RECEIPT_MEDIA_TYPE = 'application/vnd.dcx.receipt';

/** Rows per statement of the CSV export: the export never holds more than one page. */
const EXPORT_PAGE_SIZE = 1000;

/** [871] + [88] + [872]: issues deliveries, records their transitions and lists them. */
@Injectable()
export class DeliveriesService {
  /**
   * New deliveries with their "issued" events (and webhook outbox rows): many concurrent requests, one
   * signature over all their plug-in data and one statement, so one round trip and one commit
   * (autocommit: all of it or nothing); the events are published once it returned.
   */
  private readonly issuing = new GroupCommit<PreparedDelivery & { event: EventInput }, SealedDelivery>(async (items) => {
    const rows = this.sealer.seal(items);
    await this.unitOfWork.statement((work) =>
      this.deliveries.insertIssued(
        work,
        rows,
        items.map(({ event }) => event),
      ),
    );
    return rows;
  });

  constructor(
    private readonly config: AppConfig,
    private readonly keys: ServerKeysService,
    private readonly sealer: DeliverySealer,
    private readonly deliveries: DeliveryRepository,
    private readonly events: DeliveryEventRepository,
    private readonly unitOfWork: UnitOfWork,
  ) {}

  /** Issues a fresh delivery of one content and builds its sealed plug-in data. */
  issue(content: Content, requester: Requester): Promise<SealedDelivery> {
    const prepared = this.sealer.prepare(content, requester, null);
    return this.issuing.submit({ ...prepared, event: issuedEvent(prepared.delivery, content, requester) });
  }

  /**
   * A distribution's pending delivery, sealed to the installation that pulled it (a fresh secret, the current
   * keys): one UPDATE … WHERE status = 'pending' with its "issued" event. null when another pull sealed it
   * first (or it was withdrawn meanwhile): the caller reads it again.
   */
  async sealPending(pending: PendingDeliveryRef, content: Content, requester: Requester): Promise<SealedDelivery | null> {
    const [sealed] = this.sealer.seal([this.sealer.prepare(content, requester, null, pending)]);
    const event = {
      ...issuedEvent(sealed, content, requester),
      detail: { contentId: content.id, clientFingerprint: sealed.clientFingerprint, distributionId: pending.distributionId },
    };
    const won = await this.unitOfWork.statement((work) => this.deliveries.sealPending(work, sealed, event));
    return won ? sealed : null;
  }

  /**
   * POST /api/deliveries/:id/reissue: a new delivery of the same content to the same client (the same
   * client key, or the same requester IP for an anonymous delivery), for an expired or failed one.
   * The new delivery names the old one (reissued_from); the old one gets a `reissued` event.
   */
  async reissue(id: string): Promise<ReissuedDeliveryView> {
    const created = await this.unitOfWork.transaction(async (work) => {
      const old = await this.deliveries.findLocked(work, id);
      if (!old) throw new NotFoundException(`no delivery ${id}`);
      if (old.distributionId || !old.requesterIp) {
        throw new ConflictException(
          `delivery ${id} belongs to distribution ${old.distributionId}; use POST /api/distributions/${old.distributionId}/resend`,
        );
      }
      if (old.status !== 'expired' && old.status !== 'failed') {
        throw new ConflictException(`delivery ${id} is ${old.status}; only an expired or failed delivery can be re-issued`);
      }
      const earlier = await this.deliveries.findReissueOf(work, id);
      if (earlier) throw new ConflictException(`delivery ${id} was already re-issued as ${earlier}`);
      const content = await this.deliveries.findContentOf(work, old);
      if (!content || content.deletedAt) throw new ConflictException(`the content of delivery ${id} was removed; it cannot be re-issued`);
      const requester: Requester = { address: old.requesterIp, clientKey: old.clientKey };
      const [sealed] = this.sealer.seal([this.sealer.prepare(content, requester, old.id)]);
      const row = await this.deliveries.insert(work, sealed);
      await this.events.append(work, [issuedEvent(row, content, requester)]);
      await this.events.append(work, [{ deliveryId: old.id, type: 'reissued', detail: { newDeliveryId: row.id } }]);
      return row;
    });
    // Read back with its content (and reissued_as) as every listed delivery is; it was just committed.
    const delivery = (await this.deliveries.findOne(created.id, { content: true }))!;
    return { ...toDeliveryView(delivery), bundleUrl: `${this.config.publicUrl}/api/deliveries/${delivery.id}/bundle` };
  }

  /**
   * Marks up to `batchSize` issued or sent deliveries past their expiry as expired, in one
   * UPDATE … RETURNING; rows another replica is working on are skipped, so several replicas can sweep
   * at once without expiring one delivery twice. Returns how many it expired.
   */
  async expireDue(batchSize: number): Promise<number> {
    return this.unitOfWork.transaction(async (work) => {
      const expired = await this.deliveries.expireDue(work, batchSize);
      for (const { id, expiresAt } of expired) {
        await this.events.append(work, [
          { deliveryId: id, type: 'expired', reason: 'not confirmed before it expired', detail: { expiresAt: expiresAt.toISOString() } },
        ]);
      }
      return expired.length;
    });
  }

  /**
   * The last byte left: issued → sent, or failed → sent when a resumed download completed it.
   * A confirmation may already have overtaken it; then only sent_at is filled.
   */
  async markSent(id: string, bytesSent: number): Promise<void> {
    await this.deliveries.markSent(id, bytesSent);
  }

  /** The download was cut off before the last byte. */
  async markFailed(id: string, bytesSent: number, reason: string): Promise<void> {
    await this.unitOfWork.transaction(async (work) => {
      if (await this.deliveries.markFailed(work, id, bytesSent))
        await this.events.append(work, [{ deliveryId: id, type: 'failed', reason, detail: { bytesSent } }]);
    });
  }

  /**
   * A delivery with the plug-in data it was sent with, for serving its bundle again. A distribution's delivery
   * is fetched from the recipient's personal link (signed requests), never from this anonymous one.
   */
  async findWithPluginData(id: string): Promise<SealedDelivery> {
    const delivery = await this.deliveries.findOne(id, { pluginData: true });
    if (delivery?.recipientId) {
      throw new ForbiddenException(`addressed to a recipient: fetch ${this.config.publicUrl}/api/inbox/${delivery.id}/bundle`);
    }
    if (!delivery?.pluginData) throw new NotFoundException(`no bundle for delivery ${id}`);
    return delivery as SealedDelivery;
  }

  async list(query: ListDeliveriesQuery): Promise<{ items: DeliveryView[]; total: number; page: number; pageSize: number }> {
    const { items, total } = await this.deliveries.findPage(query, query.page, query.pageSize, query.sort, query.order);
    return { items: items.map(toDeliveryView), total, page: query.page, pageSize: query.pageSize };
  }

  async get(id: string): Promise<DeliveryDetailView> {
    const delivery = await this.deliveries.findOne(id, { content: true, receipt: true });
    if (!delivery) throw new NotFoundException(`no delivery ${id}`);
    const events = await this.events.findByDelivery(id);
    return {
      ...toDeliveryView(delivery),
      receipt: delivery.receipt?.toString('base64') ?? null,
      events: events.map(({ id: eventId, type, reason, remoteAddress, at, detail }) => ({
        id: eventId,
        type,
        reason,
        remoteAddress,
        at,
        detail,
      })),
    };
  }

  /** GET /api/deliveries/counts: per content, how many deliveries are in each status (zeros filled). */
  counts(filter: Pick<DeliveryFilter, 'from' | 'to'>): Promise<ContentCountsView[]> {
    return this.deliveries.countsByContent(filter);
  }

  /** GET /api/deliveries/completion: per content sent to named recipients, how many of them received it. */
  completion(): Promise<ContentCompletionView[]> {
    return this.deliveries.completionByContent();
  }

  /**
   * GET /api/deliveries/export.csv: the filtered deliveries as CSV lines, header first, newest first,
   * read in pages of EXPORT_PAGE_SIZE by (issued_at, id) keyset, so memory stays flat for any count.
   */
  async *exportCsv(filter: DeliveryFilter): AsyncGenerator<string> {
    yield CSV_HEADER;
    let after: ExportCursor | null = null;
    for (;;) {
      const page = await this.deliveries.findExportPage(filter, after, EXPORT_PAGE_SIZE);
      if (page.length > 0) yield page.map(csvRow).join('');
      if (page.length < EXPORT_PAGE_SIZE) return;
      const last = page[page.length - 1];
      after = { issuedAt: last.issuedAt, id: last.id };
    }
  }

  /** The signed receipt of a confirmed delivery; 404 for an unknown or unconfirmed one. */
  private async confirmedReceipt(id: string): Promise<Buffer> {
    const delivery = await this.deliveries.findOne(id, { receipt: true });
    if (!delivery) throw new NotFoundException(`no delivery ${id}`);
    if (!delivery.receipt) throw new NotFoundException(`delivery ${id} is ${delivery.status}, not confirmed: it has no receipt`);
    return delivery.receipt;
  }

  /**
   * GET /api/deliveries/:id/receipt/file: the receipt as the file a client keeps, `<deliveryId>.receipt`, for
   * `dcx verify-receipt` (and the evidence pack's naming).
   */
  async receiptFile(id: string): Promise<{ bytes: Buffer; fileName: string }> {
    return { bytes: await this.confirmedReceipt(id), fileName: `${id}.receipt` };
  }

  /** GET /api/deliveries/:id/receipt: the signed receipt of a confirmed delivery and what it says. */
  async receipt(id: string): Promise<DeliveryReceiptView> {
    const receipt = await this.confirmedReceipt(id);
    // The receipt is checked against the key its clear header names.
    const keyId = receiptKeyId(receipt);
    const keys = this.keys.byKeyId(keyId);
    if (!keys) throw new NotFoundException(`the receipt of delivery ${id} was signed with key ${keyId}, which this server no longer has`);
    const fields = verifyReceipt(receipt, keys.signPublicKey);
    return {
      deliveryId: fields.deliveryId,
      keyId: fields.keyId,
      serverKey: keys.signPublicKey.toString('base64url'),
      serverFingerprint: fingerprint(keys.signPublicKey),
      contentSha256: fields.files[0]?.sha256 ?? null,
      clientFingerprint: fields.clientFingerprint,
      requesterAddress: fields.requesterAddress,
      issuedAt: fields.issuedAt,
      sentAt: fields.sentAt,
      confirmedAt: fields.confirmedAt,
      files: fields.files,
      receipt: receipt.toString('base64'),
    };
  }
}
