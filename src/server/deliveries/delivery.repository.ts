import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Content } from '../contents/content.entity.js';
import { PreparedStatement, PreparedStatements } from '../database/prepared-statements.js';
import { eventCtes, eventCtesOfParameters, eventParameters, recordedEvents } from './delivery-event.repository.js';
import type { EventInput } from './delivery-events.bus.js';
import { Delivery, DeliveryStatus } from './delivery.entity.js';
import type { DeliveryFilter, DeliverySort, SortOrder } from './dto/list-deliveries.query.js';
import type { ContentCompletionView, ContentCountsView } from './dto/manager.views.js';
import { GroupCommit } from './group-commit.js';
import { UnitOfWork, Work } from './unit-of-work.js';

/** A delivery with the plug-in data its bundle carries. */
export type SealedDelivery = Delivery & { pluginData: Buffer };

/** A page of deliveries, newest first, and how many match in all. */
export interface DeliveryPage {
  items: Delivery[];
  total: number;
}

/** Where a keyset page of the export starts: after this delivery. */
export interface ExportCursor {
  issuedAt: Date;
  id: string;
}

/** "Sent" marks per statement at most: after a stall the backlog goes in a few large statements. */
const SENT_MARKS_PER_BATCH = 4096;

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
 * A pending delivery sealed to the installation that pulled it, and its "issued" event (parameters 1–5), in one
 * statement: only if it is still pending, so of two concurrent first pulls one seals and the other writes nothing.
 */
const SEAL_PENDING_SQL = `
  WITH delivery AS (
    UPDATE deliveries SET status = 'issued', client_fingerprint = $7, client_key = $8, requester_ip = $9, confirm_key = $10,
                          key_id = $11, issued_at = $12, expires_at = $13, plugin_data = $14
     WHERE id = $6 AND status = 'pending'
    RETURNING id
  ), ${eventCtes(`SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[]) WHERE EXISTS (SELECT 1 FROM delivery)`)}
  SELECT id, at FROM event ORDER BY id`;

/**
 * The "sent" marks of a batch and their events in one statement: one event per delivery updated, in
 * the order of the batch. Planned at every run, not prepared: a generic plan made while `deliveries`
 * was small scans the whole table per batch once it has grown.
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

/** Issued or sent deliveries past their expiry, skipping rows another replica holds (SKIP LOCKED). */
const EXPIRE_DUE_SQL = `WITH due AS (
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
         SELECT id, expires_at FROM expired ORDER BY expires_at, id`;

/**
 * Per content with distributions: the named recipients it is addressed to and how many of them have received it
 * (a confirmed delivery, current or one a re-send superseded), in one aggregate over the distributions' deliveries.
 * Withdrawn deliveries (a cancelled distribution, never pulled) expect nobody; a recipient in two distributions
 * of one content counts once.
 */
const COMPLETION_SQL = `SELECT d.content_id AS "contentId",
              count(DISTINCT d.recipient_id)::int AS recipients,
              count(DISTINCT d.recipient_id) FILTER (WHERE d.status = 'confirmed')::int AS received
         FROM deliveries d
        WHERE d.distribution_id IS NOT NULL AND d.status <> 'withdrawn' AND (NOT d.superseded OR d.status = 'confirmed')
        GROUP BY d.content_id
        ORDER BY d.content_id`;

const COUNTS_SQL = (range: string) => `SELECT c.id AS "contentId", c.name AS "contentName",
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
       ORDER BY c.name, c.id`;

/** The properties written by INSERT_ISSUED, in the order of its parameters 6–18. */
const INSERTED_COLUMNS = [
  'id',
  'contentId',
  'status',
  'clientFingerprint',
  'clientKey',
  'requesterIp',
  'confirmKey',
  'keyId',
  'issuedAt',
  'expiresAt',
  'reissuedFrom',
  'bytesSent',
  'pluginData',
] as const satisfies readonly (keyof SealedDelivery)[];

interface SentRow {
  id: string;
  at: Date;
  delivery_id: string;
  bytes: string;
  status: DeliveryStatus;
}

/**
 * The SQL of each sort of the delivery list (a whitelist: nothing the client sends reaches the SQL), and whether it
 * can be empty (then NULLS LAST both ways; never on a NOT NULL column, where the clause would keep PostgreSQL from
 * walking an index). Every sort ends with d.id, so the order is total and offset pages neither repeat nor skip a row.
 *
 * Indexes: issuedAt walks deliveries_issued_at_id_idx (0.6 ms a page at 500,000 deliveries). The others sort the
 * filtered rows, a top-N heapsort (250-580 ms at 500,000 on this 2-core machine, parallel scan), about the cost of
 * the count every page already makes (220 ms); an index per column would buy little for an occasional click and
 * cost every issue and confirmation a write, so there is none.
 */
const SORT_SQL: Record<DeliverySort, { sql: string; nullable: boolean }> = {
  status: {
    sql: `CASE d.status WHEN 'pending' THEN 0 WHEN 'issued' THEN 1 WHEN 'sent' THEN 2 WHEN 'confirmed' THEN 3
               WHEN 'failed' THEN 4 WHEN 'expired' THEN 5 ELSE 6 END`,
    nullable: false,
  },
  // The join leaves the name of a removed content empty.
  content: { sql: 'lower(content.name)', nullable: true },
  client: { sql: 'd.client_fingerprint', nullable: true },
  requesterIp: { sql: 'd.requester_ip', nullable: true },
  issuedAt: { sql: 'd.issued_at', nullable: false },
  sentAt: { sql: 'd.sent_at', nullable: true },
  confirmedAt: { sql: 'd.confirmed_at', nullable: true },
};

/** How few hex digits of a delivery id or a fingerprint a search needs before it is matched against their starts. */
const MIN_HEX_PREFIX = 4;

/** `%`, `_` and the backslash taken literally in a LIKE pattern (ESCAPE with a backslash). */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The first and last uuid that start with these hex digits (at most 32): a range the primary key index can walk. */
function uuidRange(hex: string): [string, string] {
  const uuid = (digits: string) => digits.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
  return [uuid(hex.padEnd(32, '0')), uuid(hex.padEnd(32, 'f'))];
}

/**
 * The fingerprints that start with `prefix` (lower-case hex), parameters named after `name`: a range that
 * deliveries_client_fingerprint_idx can walk in any collation ('g' sorts after every hex digit), and the LIKE
 * that says it exactly.
 */
function fingerprintPrefix(prefix: string, name: string): { where: string; params: Record<string, unknown> } {
  return {
    where: `(d.client_fingerprint >= :${name}From AND d.client_fingerprint < :${name}To AND d.client_fingerprint LIKE :${name}Like)`,
    params: { [`${name}From`]: prefix, [`${name}To`]: `${prefix}g`, [`${name}Like`]: `${prefix}%` },
  };
}

/**
 * The `search` condition: the content name (any part, any case), the start of the delivery id or of the client
 * fingerprint (from MIN_HEX_PREFIX hex digits), the start of the requester IP. The name goes through the small
 * contents table, so the deliveries side uses deliveries_content_id_status_idx.
 */
function searchCondition(search: string): { where: string; params: Record<string, unknown> } {
  const params: Record<string, unknown> = { searchName: `%${likeLiteral(search)}%` };
  const parts = [`d.content_id IN (SELECT c.id FROM contents c WHERE c.name ILIKE :searchName ESCAPE '\\')`];
  const hex = search.toLowerCase().replace(/-/g, '');
  if (/^[0-9a-f]+$/.test(hex) && hex.length >= MIN_HEX_PREFIX) {
    if (hex.length <= 32) {
      [params.searchIdFrom, params.searchIdTo] = uuidRange(hex);
      parts.push('d.id BETWEEN :searchIdFrom AND :searchIdTo');
    }
    if (hex.length <= 64 && !search.includes('-')) {
      const prefix = fingerprintPrefix(hex, 'searchFingerprint');
      Object.assign(params, prefix.params);
      parts.push(prefix.where);
    }
  }
  if (/^[0-9a-fA-F:.]+$/.test(search)) {
    params.searchIp = `${search.toLowerCase()}%`;
    parts.push('d.requester_ip LIKE :searchIp');
  }
  return { where: `(${parts.join(' OR ')})`, params };
}

/**
 * Applies the dashboard filters (status, content, client, issued_at range, search) to a query on `d`. A client
 * given by 12 to 63 hex digits is every fingerprint starting with them.
 */
function applyFilter<T extends { andWhere: (where: string, params?: Record<string, unknown>) => T }>(
  builder: T,
  filter: DeliveryFilter,
): T {
  if (filter.status) builder.andWhere('d.status = :status', { status: filter.status });
  if (filter.contentId) builder.andWhere('d.content_id = :contentId', { contentId: filter.contentId });
  if (filter.clientId && /^[0-9a-f]{12,63}$/.test(filter.clientId)) {
    const prefix = fingerprintPrefix(filter.clientId, 'client');
    builder.andWhere(prefix.where, prefix.params);
  } else if (filter.clientId) {
    builder.andWhere('(d.client_fingerprint = :clientId OR d.requester_ip = :clientId)', { clientId: filter.clientId });
  }
  if (filter.from) builder.andWhere('d.issued_at >= :from', { from: new Date(filter.from) });
  if (filter.to) builder.andWhere('d.issued_at < :to', { to: new Date(filter.to) });
  if (filter.search) {
    const { where, params } = searchCondition(filter.search);
    builder.andWhere(where, params);
  }
  return builder;
}

function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** [872] The deliveries table: its statements, its batched writes and its reads for the manager. */
@Injectable()
export class DeliveryRepository {
  /**
   * issued/failed → sent: many concurrent bundles finishing, one statement (one round trip, one
   * commit). Only the first "last byte sent" of a delivery counts (sent_at IS NULL).
   */
  private readonly sending = new GroupCommit<{ id: string; bytesSent: number }, void>(
    async (items) => {
      await this.unitOfWork.statement((work) => this.writeSentMarks(work, items));
      return items.map(() => undefined);
    },
    1,
    SENT_MARKS_PER_BATCH,
  );

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly statements: PreparedStatements,
    private readonly unitOfWork: UnitOfWork,
  ) {}

  /** New deliveries with their events (and webhook outbox rows): one statement, one round trip. */
  async insertIssued(work: Work, rows: SealedDelivery[], events: EventInput[]): Promise<void> {
    const column = <K extends keyof SealedDelivery>(key: K) => rows.map((row) => row[key]);
    const inserted = await this.statements.query<{ id: string; at: Date }>(
      INSERT_ISSUED,
      [...eventParameters(events), ...INSERTED_COLUMNS.map(column)],
      work.manager,
    );
    work.recorded(recordedEvents(events, inserted));
  }

  /** Seals a pending delivery (see SEAL_PENDING_SQL); false when it was no longer pending. */
  async sealPending(work: Work, sealed: SealedDelivery, event: EventInput): Promise<boolean> {
    const { id, clientFingerprint, clientKey, requesterIp, confirmKey, keyId, issuedAt, expiresAt, pluginData } = sealed;
    const rows = await work.manager.query<{ id: string; at: Date }[]>(SEAL_PENDING_SQL, [
      ...eventParameters([event]),
      id,
      clientFingerprint,
      clientKey,
      requesterIp,
      confirmKey,
      keyId,
      issuedAt,
      expiresAt,
      pluginData,
    ]);
    if (rows.length === 0) return false;
    work.recorded(recordedEvents([event], rows));
    return true;
  }

  /** One delivery, through the ORM (a re-issue, in its transaction). */
  async insert(work: Work, delivery: Delivery): Promise<Delivery> {
    const row = work.manager.create(Delivery, delivery);
    await work.manager.insert(Delivery, row);
    return row;
  }

  /**
   * The last byte left: issued → sent, or failed → sent when a resumed download completed it; a
   * confirmation may have overtaken it (then only sent_at is filled). Group-committed.
   */
  async markSent(id: string, bytesSent: number): Promise<void> {
    await this.sending.submit({ id, bytesSent });
  }

  private async writeSentMarks(work: Work, items: { id: string; bytesSent: number }[]): Promise<void> {
    // In id order, as confirmations lock their deliveries: the two do not deadlock where a plan follows it.
    const marks = [...items].sort(byId);
    const rows = await work.manager.query<SentRow[]>(MARK_SENT_SQL, [marks.map(({ id }) => id), marks.map(({ bytesSent }) => bytesSent)]);
    const events: EventInput[] = rows.map(({ delivery_id, bytes, status }) => ({
      deliveryId: delivery_id,
      type: 'sent',
      status,
      detail: { bytesSent: Number(bytes) },
    }));
    work.recorded(recordedEvents(events, rows));
  }

  /** issued → failed; false when the delivery was no longer issued. */
  async markFailed(work: Work, id: string, bytesSent: number): Promise<boolean> {
    const result = await work.manager
      .createQueryBuilder()
      .update(Delivery)
      .set({ status: 'failed', failedAt: () => 'now()', bytesSent: () => 'bytes_sent + :bytesSent' })
      .where(`id = :id AND status = 'issued'`, { id, bytesSent })
      .execute();
    return Boolean(result.affected);
  }

  /** Marks up to `limit` due deliveries expired; returns them by expiry time. */
  async expireDue(work: Work, limit: number): Promise<{ id: string; expiresAt: Date }[]> {
    const rows = await work.manager.query<{ id: string; expires_at: Date }[]>(EXPIRE_DUE_SQL, [limit]);
    return rows.map(({ id, expires_at }) => ({ id, expiresAt: new Date(expires_at) }));
  }

  /** A delivery locked for update, in `work`'s transaction. */
  findLocked(work: Work, id: string): Promise<Delivery | null> {
    return work.manager.getRepository(Delivery).createQueryBuilder('d').where('d.id = :id', { id }).setLock('pessimistic_write').getOne();
  }

  /** The id of the delivery that re-issued `id`, if any. */
  async findReissueOf(work: Work, id: string): Promise<string | null> {
    const row = await work.manager.findOne(Delivery, { where: { reissuedFrom: id }, select: { id: true } });
    return row?.id ?? null;
  }

  /** A delivery's content, unless removed. */
  findContentOf(work: Work, delivery: Pick<Delivery, 'contentId'>): Promise<Content | null> {
    return work.manager.findOne(Content, { where: { id: delivery.contentId } });
  }

  /**
   * One delivery, with what the caller needs beyond its own columns: its content (joined), its plug-in data
   * and its receipt (large columns, not selected unless asked for).
   */
  findOne(id: string, include: { content?: boolean; pluginData?: boolean; receipt?: boolean } = {}): Promise<Delivery | null> {
    const query = this.dataSource.getRepository(Delivery).createQueryBuilder('d');
    if (include.content) query.leftJoinAndSelect('d.content', 'content');
    if (include.pluginData) query.addSelect('d.pluginData');
    if (include.receipt) query.addSelect('d.receipt');
    return query.where('d.id = :id', { id }).getOne();
  }

  /**
   * One offset page of the filtered deliveries in the order asked for (see SORT_SQL), and how many match. OFFSET and
   * LIMIT, not TypeORM's skip/take: the one join is many-to-one, so a row is a delivery, and the ORDER BY (an
   * expression for status and content) stays as written instead of going through a DISTINCT sub-query.
   */
  async findPage(filter: DeliveryFilter, page: number, pageSize: number, sort: DeliverySort, order: SortOrder): Promise<DeliveryPage> {
    const builder = this.withContent(filter)
      .orderBy(SORT_SQL[sort].sql, order === 'asc' ? 'ASC' : 'DESC', SORT_SQL[sort].nullable ? 'NULLS LAST' : undefined)
      .addOrderBy('d.id', 'ASC');
    const [items, total] = await builder
      .offset((page - 1) * pageSize)
      .limit(pageSize)
      .getManyAndCount();
    return { items, total };
  }

  /** Up to `size` filtered deliveries after `after`, newest first by (issued_at, id). */
  findExportPage(filter: DeliveryFilter, after: ExportCursor | null, size: number): Promise<Delivery[]> {
    const builder = this.filtered(filter, 'DESC').take(size);
    if (after) builder.andWhere('(d.issued_at, d.id) < (:afterIssuedAt, :afterId)', { afterIssuedAt: after.issuedAt, afterId: after.id });
    return builder.getMany();
  }

  /** The filtered deliveries with their contents, newest first, then by id in `idOrder`. */
  private filtered(filter: DeliveryFilter, idOrder: 'ASC' | 'DESC') {
    return this.withContent(filter).orderBy('d.issued_at', 'DESC').addOrderBy('d.id', idOrder);
  }

  /** The filtered deliveries joined with their contents. */
  private withContent(filter: DeliveryFilter) {
    return applyFilter(this.dataSource.getRepository(Delivery).createQueryBuilder('d').leftJoinAndSelect('d.content', 'content'), filter);
  }

  /** How many deliveries are in each status, of those that have any. */
  async countByStatus(): Promise<{ status: DeliveryStatus; count: number }[]> {
    const rows = await this.dataSource.query<
      {
        status: DeliveryStatus;
        count: string;
      }[]
    >('SELECT status, count(*) AS count FROM deliveries GROUP BY status');
    return rows.map(({ status, count }) => ({ status, count: Number(count) }));
  }

  /**
   * Current deliveries of distributions by status, and how many of them are overdue (due passed, not confirmed
   * nor withdrawn): the partial index deliveries_distribution_status_idx holds exactly these rows.
   */
  async countDistributionRecipients(): Promise<{ status: DeliveryStatus | 'overdue'; count: number }[]> {
    const rows = await this.dataSource.query<{ status: DeliveryStatus; count: number; overdue: number }[]>(
      `SELECT d.status, count(*)::int AS count,
              count(*) FILTER (WHERE x.due_at <= now() AND d.status NOT IN ('confirmed', 'withdrawn'))::int AS overdue
         FROM deliveries d JOIN distributions x ON x.id = d.distribution_id
        WHERE d.distribution_id IS NOT NULL AND NOT d.superseded GROUP BY d.status`,
    );
    const overdue = rows.reduce((sum, row) => sum + row.overdue, 0);
    return [...rows.map(({ status, count }) => ({ status, count })), { status: 'overdue', count: overdue }];
  }

  /** Per content, how many deliveries issued in the range are in each status (zeros filled). */
  async countsByContent(filter: Pick<DeliveryFilter, 'from' | 'to'>): Promise<ContentCountsView[]> {
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
    return await this.dataSource.query<ContentCountsView[]>(COUNTS_SQL(range), params);
  }

  /** Per content with distributions, recipients and how many received it (see COMPLETION_SQL). */
  completionByContent(): Promise<ContentCompletionView[]> {
    return this.dataSource.query<ContentCompletionView[]>(COMPLETION_SQL);
  }
}
