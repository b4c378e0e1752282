import { BadRequestException, ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { SECRET_SIZE } from '../../protocol/constants.js';
import { deriveConfirmKey } from '../../protocol/confirmation.js';
import { fingerprint } from '../../protocol/keys.js';
import { newDeliveryId } from '../../protocol/delivery-id.js';
import { secureRandomBytes } from '../../protocol/random.js';
import { ClientSealSecretSource, PluginData, PluginSealRequest, sealPluginDataBatch } from '../../protocol/plugin-data.js';
import { receiptKeyId, verifyReceipt } from '../../protocol/receipt.js';
import { AppConfig } from '../config/app-config.js';
import { Content } from '../contents/content.entity.js';
import { PreparedStatement, PreparedStatements } from '../database/prepared-statements.js';
import { ServerKeysService } from '../keys/server-keys.service.js';
import { DeliveryEvent } from './delivery-event.entity.js';
import { DeliveryEventsBus, EventInput, eventCtes, eventCtesOfParameters, eventParameters, RecordingTransaction, recordedEvents } from './delivery-events.bus.js';
import { Delivery, DeliveryStatus } from './delivery.entity.js';
import { GroupCommit } from './group-commit.js';
import { DeliveryDetailView, DeliveryView, toDeliveryView } from './dto/delivery.view.js';
import { DeliveryFilter, ListDeliveriesQuery } from './dto/list-deliveries.query.js';
import { ContentCountsView, DeliveryReceiptView, ReissuedDeliveryView } from './dto/manager.views.js';
import { CSV_HEADER, csvRow } from './csv.js';

export interface Requester {
  /** The requester's IP as the server saw it: client information in anonymous mode. */
  address: string;
  /** Raw X25519 key from DCX-Client-Key: the plug-in data is then sealed to it. */
  clientKey: Buffer | null;
}

/** A delivery with the plug-in data its bundle carries. */
export type SealedDelivery = Delivery & { pluginData: Buffer };

/** A new delivery whose plug-in data is not sealed yet: the row without it and what to seal. */
interface PreparedDelivery {
  delivery: Omit<Delivery, 'keyId' | 'pluginData'>;
  plugin: PluginSealRequest;
}

/**
 * "Sent" marks per statement at most. No response waits for its mark, so bundles keep finishing while the
 * database is slow, and the marks gather: after a stall they must go in a few large statements, not 256
 * at a time behind the new ones (see MARK_SENT_SQL).
 */
const SENT_MARKS_PER_BATCH = 4096;

/** Rows per statement of the CSV export: the export never holds more than one page. */
const EXPORT_PAGE_SIZE = 1000;

/** Applies the dashboard filters (status, content, client, issued_at range) to a query on `d`. */
function applyFilter<T extends { andWhere: (where: string, params?: Record<string, unknown>) => T }>(builder: T, filter: DeliveryFilter): T {
  if (filter.status) builder.andWhere('d.status = :status', { status: filter.status });
  if (filter.contentId) builder.andWhere('d.content_id = :contentId', { contentId: filter.contentId });
  if (filter.clientId) builder.andWhere('(d.client_fingerprint = :clientId OR d.requester_ip = :clientId)', { clientId: filter.clientId });
  if (filter.from) builder.andWhere('d.issued_at >= :from', { from: new Date(filter.from) });
  if (filter.to) builder.andWhere('d.issued_at < :to', { to: new Date(filter.to) });
  return builder;
}

/** New deliveries and their events (parameters 1–5, see eventCtes) in one statement. */
const INSERT_ISSUED = new PreparedStatement(
  'dcx_deliveries_issue',
  `
  WITH delivery AS (
    INSERT INTO deliveries (id, content_id, status, client_fingerprint, client_key, requester_ip, confirm_key, key_id,
                            issued_at, expires_at, reissued_from, bytes_sent, plugin_data)
    SELECT * FROM unnest($6::uuid[], $7::uuid[], $8::text[], $9::text[], $10::bytea[], $11::text[], $12::bytea[], $13::text[],
                         $14::timestamptz[], $15::timestamptz[], $16::uuid[], $17::bigint[], $18::bytea[])
  ), ${eventCtesOfParameters(1)}
  SELECT id, at FROM event ORDER BY id`,
);

/**
 * The "sent" marks of a batch and their events in one statement: one event per delivery updated,
 * in the order of the batch. Planned at every run (not a PreparedStatement): a plan PostgreSQL keeps for
 * any parameters is made once, from the table as it is then. Made while `deliveries` was small, and kept
 * while nothing analyzes the table (autovacuum off), it scanned the whole table for every batch and
 * compared each unmarked row with each mark: 1.25 s for a batch of 256 once 36,000 marks waited, so the
 * marks piled up faster than they went (measured with auto_explain after a 2 s lock on 100 rows: the
 * backlog grew to 47,000 and shrank by 256 a second). A plan for the batch at hand costs in proportion
 * to the batch and the table, not to their product.
 */
const MARK_SENT_SQL = `
  WITH v AS (
    SELECT id, bytes, ord FROM unnest($1::uuid[], $2::bigint[]) WITH ORDINALITY AS v(id, bytes, ord)
  ), sent AS (
    UPDATE deliveries d
       SET sent_at = now(), bytes_sent = d.bytes_sent + v.bytes,
           status = CASE WHEN d.status IN ('issued', 'failed') THEN 'sent' ELSE d.status END
      FROM v
     WHERE d.id = v.id AND d.sent_at IS NULL
 RETURNING d.id AS id, v.bytes AS bytes, d.status AS status, v.ord AS ord
  ), ${eventCtes(`SELECT id, 'sent', NULL, NULL, jsonb_build_object('bytesSent', bytes) FROM sent ORDER BY ord`)}
  SELECT event.id, event.at, event.delivery_id, sent.bytes, sent.status FROM event JOIN sent ON sent.id = event.delivery_id ORDER BY event.id`;

/** [871] + [88] + [872]: issues deliveries, records their transitions and lists them. */
@Injectable()
export class DeliveriesService {
  /**
   * New deliveries with their "issued" events (and webhook outbox rows): many concurrent requests, one
   * signature over all their plug-in data and one statement, so one round trip and one commit
   * (autocommit: all of it or nothing); the events are published once it returned.
   */
  private readonly issuing = new GroupCommit<PreparedDelivery & { event: EventInput }, SealedDelivery>(async (items) => {
    const rows = this.seal(items);
    const events = items.map(({ event }) => event);
    const inserted = await this.statements.query<{ id: string; at: Date }>(INSERT_ISSUED, [
      ...eventParameters(events),
      rows.map((d) => d.id),
      rows.map((d) => d.contentId),
      rows.map((d) => d.status),
      rows.map((d) => d.clientFingerprint),
      rows.map((d) => d.clientKey),
      rows.map((d) => d.requesterIp),
      rows.map((d) => d.confirmKey),
      rows.map((d) => d.keyId),
      rows.map((d) => d.issuedAt),
      rows.map((d) => d.expiresAt),
      rows.map((d) => d.reissuedFrom),
      rows.map((d) => d.bytesSent),
      rows.map((d) => d.pluginData),
    ]);
    this.events.publishCommitted(recordedEvents(events, inserted));
    return rows;
  });

  /**
   * issued/failed → sent: many concurrent bundles finishing, one statement (one round trip, one commit).
   * Only the first "last byte sent" of a delivery counts (sent_at IS NULL); a confirmation may have
   * overtaken it, and then the status stays confirmed (the event says so). Up to SENT_MARKS_PER_BATCH
   * marks per statement (see there).
   */
  private readonly sending = new GroupCommit<{ id: string; bytesSent: number }, void>(async (items) => {
    // In id order, as confirmations lock their deliveries: the two do not deadlock where a plan follows it.
    const marks = [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const rows: { id: string; at: Date; delivery_id: string; bytes: string; status: DeliveryStatus }[] = await this.dataSource.query(MARK_SENT_SQL, [
      marks.map(({ id }) => id),
      marks.map(({ bytesSent }) => bytesSent),
    ]);
    const events: EventInput[] = rows.map(({ delivery_id, bytes, status }) => ({ deliveryId: delivery_id, type: 'sent', status, detail: { bytesSent: Number(bytes) } }));
    this.events.publishCommitted(recordedEvents(events, rows));
    return items.map(() => undefined);
  }, 1, SENT_MARKS_PER_BATCH);

  /** X25519 with a client's key, kept by ServerKeysService between that client's bundles. */
  private readonly clientSealSecret: ClientSealSecretSource = (keys, clientPublicKey) => this.keys.clientSealSecret(keys, clientPublicKey);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly config: AppConfig,
    private readonly keys: ServerKeysService,
    private readonly events: DeliveryEventsBus,
    private readonly statements: PreparedStatements,
  ) {}

  /** A transaction whose audit-trail events are published to the bus once it commits. */
  transaction<T>(work: (tx: RecordingTransaction) => Promise<T>): Promise<T> {
    return this.events.transaction(this.dataSource.manager, work);
  }

  /** Issues a fresh delivery of one content and builds its sealed plug-in data. */
  issue(content: Content, requester: Requester): Promise<SealedDelivery> {
    const prepared = this.prepare(content, requester, null);
    return this.issuing.submit({ ...prepared, event: issuedEvent(prepared.delivery, content, requester) });
  }

  /** The row of a new delivery and its plug-in data, to be sealed (nothing stored yet). */
  private prepare(content: Content, requester: Requester, reissuedFrom: string | null): PreparedDelivery {
    if (requester.clientKey) {
      const keys = this.keys.current;
      try {
        this.clientSealSecret(keys, requester.clientKey); // kept for sealing
      } catch {
        // X25519 refuses low-order points: a key that agrees on nothing.
        throw new BadRequestException('DCX-Client-Key is not a usable X25519 public key');
      }
    }
    const issuedAt = new Date();
    const expiresAt = new Date(issuedAt.getTime() + this.config.deliveryTtlMs);
    const confirmSecret = secureRandomBytes(SECRET_SIZE);
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
    const delivery: PreparedDelivery['delivery'] = {
      id: data.deliveryId,
      contentId: content.id,
      status: 'issued',
      clientFingerprint,
      clientKey: requester.clientKey,
      requesterIp: requester.address,
      confirmKey: deriveConfirmKey(confirmSecret, data.deliveryId),
      issuedAt,
      expiresAt,
      sentAt: null,
      confirmedAt: null,
      failedAt: null,
      expiredAt: null,
      reissuedFrom,
      bytesSent: 0,
      confirmedFrom: null,
      receipt: null,
    };
    return { delivery, plugin: { data, clientPublicKey: requester.clientKey } };
  }

  /** Seals the plug-in data of new deliveries with the current key set: one signature for all of them (BATCH_SIGNATURES). */
  private seal(prepared: PreparedDelivery[]): SealedDelivery[] {
    const keys = this.keys.current;
    const records = sealPluginDataBatch(
      prepared.map(({ plugin }) => plugin),
      keys,
      this.clientSealSecret,
      this.config.batchSignatures,
    );
    return prepared.map(({ delivery }, i) => ({ ...delivery, keyId: keys.keyId, pluginData: records[i]! }));
  }

  private async insertIssued({ manager, record }: RecordingTransaction, delivery: Delivery, content: Content, requester: Requester): Promise<Delivery> {
    const row = manager.create(Delivery, delivery);
    await manager.insert(Delivery, row);
    await record(issuedEvent(row, content, requester));
    return row;
  }

  /**
   * POST /api/deliveries/:id/reissue: a new delivery of the same content to the same client (the same
   * client key, or the same requester IP for an anonymous delivery), for an expired or failed one.
   * The new delivery names the old one (reissued_from); the old one gets a `reissued` event.
   */
  async reissue(id: string): Promise<ReissuedDeliveryView> {
    const created = await this.transaction(async (tx) => {
      const old = await tx.manager.getRepository(Delivery).createQueryBuilder('d').where('d.id = :id', { id }).setLock('pessimistic_write').getOne();
      if (!old) throw new NotFoundException(`no delivery ${id}`);
      if (old.status !== 'expired' && old.status !== 'failed') {
        throw new ConflictException(`delivery ${id} is ${old.status}; only an expired or failed delivery can be re-issued`);
      }
      const earlier = await tx.manager.findOne(Delivery, { where: { reissuedFrom: id }, select: { id: true } });
      if (earlier) throw new ConflictException(`delivery ${id} was already re-issued as ${earlier.id}`);
      const content = await tx.manager.findOne(Content, { where: { id: old.contentId } });
      if (!content || content.deletedAt) throw new ConflictException(`the content of delivery ${id} was removed; it cannot be re-issued`);
      const requester: Requester = { address: old.requesterIp, clientKey: old.clientKey };
      const [sealed] = this.seal([this.prepare(content, requester, old.id)]);
      const row = await this.insertIssued(tx, sealed!, content, requester);
      await tx.record({ deliveryId: old.id, type: 'reissued', detail: { newDeliveryId: row.id } });
      return row;
    });
    const delivery = await this.dataSource.getRepository(Delivery).findOneOrFail({ where: { id: created.id }, relations: { content: true } });
    return { ...toDeliveryView(delivery), bundleUrl: `${this.config.publicUrl}/api/deliveries/${delivery.id}/bundle` };
  }

  /**
   * Marks up to `batchSize` issued or sent deliveries past their expiry as expired, in one
   * UPDATE … RETURNING; rows another replica is working on are skipped (SKIP LOCKED), so several
   * replicas can sweep at once without expiring one delivery twice. Returns how many it expired.
   */
  async expireDue(batchSize: number): Promise<number> {
    return this.transaction(async ({ manager, record }) => {
      const rows = (await manager.query(
        `WITH due AS (
           SELECT id FROM deliveries
           WHERE status IN ('issued', 'sent') AND expires_at <= now()
           ORDER BY expires_at
           LIMIT $1
           FOR UPDATE SKIP LOCKED
         ), expired AS (
           UPDATE deliveries d SET status = 'expired', expired_at = now()
           FROM due WHERE d.id = due.id
           RETURNING d.id, d.expires_at
         )
         SELECT id, expires_at FROM expired ORDER BY expires_at, id`,
        [batchSize],
      )) as { id: string; expires_at: Date }[];
      for (const row of rows) {
        await record({ deliveryId: row.id, type: 'expired', reason: 'not confirmed before it expired', detail: { expiresAt: new Date(row.expires_at).toISOString() } });
      }
      return rows.length;
    });
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
  async findWithPluginData(id: string): Promise<SealedDelivery> {
    const delivery = await this.dataSource
      .getRepository(Delivery)
      .createQueryBuilder('d')
      .addSelect('d.pluginData')
      .where('d.id = :id', { id })
      .getOne();
    if (!delivery?.pluginData) throw new NotFoundException(`no bundle for delivery ${id}`);
    return delivery as SealedDelivery;
  }

  async list(query: ListDeliveriesQuery): Promise<{ items: DeliveryView[]; total: number; page: number; pageSize: number }> {
    const builder = applyFilter(
      this.dataSource.getRepository(Delivery).createQueryBuilder('d').leftJoinAndSelect('d.content', 'content').orderBy('d.issued_at', 'DESC').addOrderBy('d.id'),
      query,
    );
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

  /** GET /api/deliveries/counts: per content, how many deliveries are in each status (zeros filled). */
  async counts(filter: Pick<DeliveryFilter, 'from' | 'to'>): Promise<ContentCountsView[]> {
    const params: unknown[] = [];
    let range = '';
    if (filter.from) {
      params.push(new Date(filter.from));
      range += ` AND d.issued_at >= $${params.length}`;
    }
    if (filter.to) {
      params.push(new Date(filter.to));
      range += ` AND d.issued_at < $${params.length}`;
    }
    const rows = (await this.dataSource.query(
      `SELECT c.id AS "contentId", c.name AS "contentName",
              count(d.id) FILTER (WHERE d.status = 'issued')::int AS issued,
              count(d.id) FILTER (WHERE d.status = 'sent')::int AS sent,
              count(d.id) FILTER (WHERE d.status = 'confirmed')::int AS confirmed,
              count(d.id) FILTER (WHERE d.status = 'failed')::int AS failed,
              count(d.id) FILTER (WHERE d.status = 'expired')::int AS expired,
              count(d.id)::int AS total
       FROM contents c
       LEFT JOIN deliveries d ON d.content_id = c.id${range}
       GROUP BY c.id, c.name, c.deleted_at
       HAVING c.deleted_at IS NULL OR count(d.id) > 0
       ORDER BY c.name, c.id`,
      params,
    )) as ContentCountsView[];
    return rows;
  }

  /**
   * GET /api/deliveries/export.csv: the filtered deliveries as CSV lines, header first, newest first,
   * read in pages of EXPORT_PAGE_SIZE by (issued_at, id) keyset, so memory stays flat for any count.
   */
  async *exportCsv(filter: DeliveryFilter): AsyncGenerator<string> {
    yield CSV_HEADER;
    let after: { issuedAt: Date; id: string } | null = null;
    for (;;) {
      const builder = applyFilter(
        this.dataSource.getRepository(Delivery).createQueryBuilder('d').leftJoinAndSelect('d.content', 'content').orderBy('d.issued_at', 'DESC').addOrderBy('d.id', 'DESC'),
        filter,
      ).take(EXPORT_PAGE_SIZE);
      if (after) builder.andWhere('(d.issued_at, d.id) < (:afterIssuedAt, :afterId)', { afterIssuedAt: after.issuedAt, afterId: after.id });
      const page = await builder.getMany();
      if (page.length > 0) yield page.map(csvRow).join('');
      if (page.length < EXPORT_PAGE_SIZE) return;
      const last = page[page.length - 1];
      after = { issuedAt: last.issuedAt, id: last.id };
    }
  }

  /** GET /api/deliveries/:id/receipt: the signed receipt of a confirmed delivery and what it says. */
  async receipt(id: string): Promise<DeliveryReceiptView> {
    const delivery = await this.dataSource.getRepository(Delivery).createQueryBuilder('d').addSelect('d.receipt').where('d.id = :id', { id }).getOne();
    if (!delivery) throw new NotFoundException(`no delivery ${id}`);
    if (!delivery.receipt) throw new NotFoundException(`delivery ${id} is ${delivery.status}, not confirmed: it has no receipt`);
    // The receipt is checked against the key its clear header names.
    const keyId = receiptKeyId(delivery.receipt);
    const keys = this.keys.byKeyId(keyId);
    if (!keys) throw new NotFoundException(`the receipt of delivery ${id} was signed with key ${keyId}, which this server no longer has`);
    const fields = verifyReceipt(delivery.receipt, keys.signPublicKey);
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
      receipt: delivery.receipt.toString('base64'),
    };
  }
}

function issuedEvent(delivery: Pick<Delivery, 'id' | 'clientFingerprint' | 'reissuedFrom'>, content: Content, requester: Requester): EventInput {
  const detail = { contentId: content.id, clientFingerprint: delivery.clientFingerprint, ...(delivery.reissuedFrom ? { reissuedFrom: delivery.reissuedFrom } : {}) };
  return { deliveryId: delivery.id, type: 'issued', remoteAddress: requester.address, detail };
}
