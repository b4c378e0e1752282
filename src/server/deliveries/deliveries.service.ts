import { BadRequestException, Injectable, NotFoundException } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { SECRET_SIZE } from '../../protocol/constants.js';
import { deriveConfirmKey } from '../../protocol/confirmation.js';
import { fingerprint, newDeliveryId } from '../../protocol/keys.js';
import { PluginData, sealPluginData } from '../../protocol/plugin-data.js';
import { AppConfig } from '../config/app-config.js';
import { Content } from '../contents/content.entity.js';
import { ServerKeysService } from '../keys/server-keys.service.js';
import { DeliveryEvent } from './delivery-event.entity.js';
import { DeliveryEventsBus, EventInput, RecordingTransaction } from './delivery-events.bus.js';
import { Delivery } from './delivery.entity.js';
import { GroupCommit } from './group-commit.js';
import { DeliveryDetailView, DeliveryView, toDeliveryView } from './dto/delivery.view.js';
import { ListDeliveriesQuery } from './dto/list-deliveries.query.js';

export interface Requester {
  /** The requester's IP as the server saw it: client information in anonymous mode. */
  address: string;
  /** Raw X25519 key from DCX-Client-Key: the plug-in data is then sealed to it. */
  clientKey: Buffer | null;
}

export interface IssuedDelivery {
  delivery: Delivery;
  pluginData: Buffer;
}

/** [871] + [88] + [872]: issues deliveries, records their transitions and lists them. */
@Injectable()
export class DeliveriesService {
  /** New deliveries with their "issued" events: many concurrent requests, one commit. */
  private readonly issuing = new GroupCommit<{ row: Delivery; event: EventInput }, Delivery>((items) =>
    this.transaction(async ({ manager, recordMany }) => {
      await manager.insert(Delivery, items.map(({ row }) => row));
      await recordMany(items.map(({ event }) => event));
      return items.map(({ row }) => row);
    }),
  );

  /** issued/failed → sent: many concurrent bundles finishing, one commit. */
  private readonly sending = new GroupCommit<{ id: string; bytesSent: number }, void>(async (items) => {
    await this.transaction(async ({ manager, recordMany }) => {
      // Only the first "last byte sent" of a delivery counts (sent_at IS NULL); a confirmation may have overtaken it.
      const raw: unknown = await manager.query(
        `UPDATE deliveries d
            SET sent_at = now(), bytes_sent = d.bytes_sent + v.bytes,
                status = CASE WHEN d.status IN ('issued', 'failed') THEN 'sent' ELSE d.status END
           FROM unnest($1::uuid[], $2::bigint[]) AS v(id, bytes)
          WHERE d.id = v.id AND d.sent_at IS NULL
      RETURNING d.id AS id, v.bytes AS bytes`,
        [items.map(({ id }) => id), items.map(({ bytesSent }) => bytesSent)],
      );
      // TypeORM answers an UPDATE with [rows, affected].
      const updated = (Array.isArray(raw) && Array.isArray(raw[0]) ? raw[0] : raw) as { id: string; bytes: string }[];
      await recordMany(updated.map(({ id, bytes }) => ({ deliveryId: id, type: 'sent', detail: { bytesSent: Number(bytes) } })));
    });
    return items.map(() => undefined);
  });

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly config: AppConfig,
    private readonly keys: ServerKeysService,
    private readonly events: DeliveryEventsBus,
  ) {}

  /** A transaction whose audit-trail events are published to the bus once it commits. */
  transaction<T>(work: (tx: RecordingTransaction) => Promise<T>): Promise<T> {
    return this.events.transaction(this.dataSource.manager, work);
  }

  /** Issues a fresh delivery of one content and builds its sealed plug-in data. */
  async issue(content: Content, requester: Requester): Promise<IssuedDelivery> {
    const keys = this.keys.current;
    const issuedAt = new Date();
    const expiresAt = new Date(issuedAt.getTime() + this.config.deliveryTtlSeconds * 1000);
    const confirmSecret = randomBytes(SECRET_SIZE);
    const clientFingerprint = requester.clientKey ? fingerprint(requester.clientKey) : null;
    const data: PluginData = {
      deliveryId: newDeliveryId(),
      client: { fingerprint: clientFingerprint, address: requester.address },
      server: { host: this.config.publicHost, confirmPort: this.config.confirmPort, url: this.config.publicUrl },
      confirmSecret,
      files: [{ name: content.name, size: content.size, sha256: content.sha256 }],
      issuedAt,
      expiresAt,
    };
    let pluginData: Buffer;
    try {
      pluginData = sealPluginData(data, keys, requester.clientKey);
    } catch (error) {
      // X25519 refuses low-order points: a key that agrees on nothing.
      if (requester.clientKey) throw new BadRequestException('DCX-Client-Key is not a usable X25519 public key');
      throw error;
    }
    const row = this.dataSource.manager.create(Delivery, {
      id: data.deliveryId,
      contentId: content.id,
      status: 'issued',
      clientFingerprint,
      clientKey: requester.clientKey,
      requesterIp: requester.address,
      confirmKey: deriveConfirmKey(confirmSecret, data.deliveryId),
      keyId: keys.keyId,
      issuedAt,
      expiresAt,
      sentAt: null,
      confirmedAt: null,
      failedAt: null,
      bytesSent: 0,
      confirmedFrom: null,
      receipt: null,
      pluginData,
    });
    const delivery = await this.issuing.submit({
      row,
      event: { deliveryId: row.id, type: 'issued', remoteAddress: requester.address, detail: { contentId: content.id, clientFingerprint } },
    });
    return { delivery, pluginData };
  }

  /**
   * The last byte left: issued → sent, or failed → sent when a resumed download completed it.
   * A confirmation may already have overtaken it; then only sent_at is filled.
   */
  async markSent(id: string, bytesSent: number): Promise<void> {
    await this.sending.submit({ id, bytesSent });
  }

  /** The download was cut off before the last byte. */
  async markFailed(id: string, bytesSent: number, reason: string): Promise<void> {
    await this.transaction(async ({ manager, record }) => {
      const result = await manager
        .createQueryBuilder()
        .update(Delivery)
        .set({ status: 'failed', failedAt: () => 'now()', bytesSent: () => 'bytes_sent + :bytesSent' })
        .where(`id = :id AND status = 'issued'`, { id, bytesSent })
        .execute();
      if (result.affected) await record({ deliveryId: id, type: 'failed', reason, detail: { bytesSent } });
    });
  }

  /** A delivery with the plug-in data it was sent with, for serving its bundle again. */
  async findWithPluginData(id: string): Promise<Delivery & { pluginData: Buffer }> {
    const delivery = await this.dataSource
      .getRepository(Delivery)
      .createQueryBuilder('d')
      .addSelect('d.pluginData')
      .where('d.id = :id', { id })
      .getOne();
    if (!delivery?.pluginData) throw new NotFoundException(`no bundle for delivery ${id}`);
    return delivery as Delivery & { pluginData: Buffer };
  }

  async list(query: ListDeliveriesQuery): Promise<{ items: DeliveryView[]; total: number; page: number; pageSize: number }> {
    const builder = this.dataSource.getRepository(Delivery).createQueryBuilder('d').leftJoinAndSelect('d.content', 'content').orderBy('d.issued_at', 'DESC').addOrderBy('d.id');
    if (query.status) builder.andWhere('d.status = :status', { status: query.status });
    if (query.contentId) builder.andWhere('d.content_id = :contentId', { contentId: query.contentId });
    if (query.clientId) builder.andWhere('(d.client_fingerprint = :clientId OR d.requester_ip = :clientId)', { clientId: query.clientId });
    const [items, total] = await builder.skip((query.page - 1) * query.pageSize).take(query.pageSize).getManyAndCount();
    return { items: items.map(toDeliveryView), total, page: query.page, pageSize: query.pageSize };
  }

  async get(id: string): Promise<DeliveryDetailView> {
    const delivery = await this.dataSource
      .getRepository(Delivery)
      .createQueryBuilder('d')
      .leftJoinAndSelect('d.content', 'content')
      .addSelect('d.receipt')
      .where('d.id = :id', { id })
      .getOne();
    if (!delivery) throw new NotFoundException(`no delivery ${id}`);
    const events = await this.dataSource.getRepository(DeliveryEvent).find({ where: { deliveryId: id }, order: { id: 'ASC' } });
    return {
      ...toDeliveryView(delivery),
      receipt: delivery.receipt?.toString('base64') ?? null,
      events: events.map(({ id: eventId, type, reason, remoteAddress, at, detail }) => ({ id: eventId, type, reason, remoteAddress, at, detail })),
    };
  }
}
