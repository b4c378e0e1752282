import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { eventCtes, recordedEvents } from '../deliveries/delivery-event.repository.js';
import type { EventInput } from '../deliveries/delivery-events.bus.js';
import type { DeliveryStatus } from '../deliveries/delivery.entity.js';
import type { Work } from '../deliveries/unit-of-work.js';
import { UNCONFIRMED_STATUSES } from './distribution-status.js';

/** A group as resolved when a distribution is created: its snapshot in `sources`. */
export interface GroupSnapshot {
  groupId: string;
  name: string;
  selector: string[] | null;
  resolved: number;
}

export interface DistributionRow {
  id: string;
  contentId: string;
  contentName: string;
  contentSize: number;
  contentSha256: string;
  note: string | null;
  dueAt: Date | null;
  createdAt: Date;
  cancelledAt: Date | null;
  completedAt: Date | null;
  overdueAt: Date | null;
  recipientsTotal: number;
  sources: unknown;
}

export interface RecipientRow {
  recipientId: string;
  name: string;
  email: string | null;
  deliveryId: string;
  status: DeliveryStatus;
  fingerprint: string | null;
  issuedAt: Date;
  sentAt: Date | null;
  confirmedAt: Date | null;
}

const DISTRIBUTION_COLUMNS = `x.id, x.content_id AS "contentId", c.name AS "contentName", c.size::float8 AS "contentSize",
  c.sha256 AS "contentSha256", x.note, x.due_at AS "dueAt", x.created_at AS "createdAt", x.cancelled_at AS "cancelledAt",
  x.completed_at AS "completedAt", x.overdue_at AS "overdueAt", x.recipients_total AS "recipientsTotal", x.sources`;

/** Recipients named by a distribution that do not exist. */
const UNKNOWN_RECIPIENTS_SQL = `SELECT u.id FROM unnest($1::uuid[]) AS u(id)
  WHERE NOT EXISTS (SELECT 1 FROM recipients r WHERE r.id = u.id) ORDER BY u.id LIMIT 20`;

/** The members of a group: static ones and those whose labels contain its selector (recipients_labels_idx). */
const GROUP_MEMBERS = (group: string) => `SELECT m.recipient_id FROM recipient_group_members m WHERE m.group_id = ${group}.id
  UNION SELECT r.id FROM recipients r WHERE cardinality(${group}.selector_labels) > 0 AND r.labels @> ${group}.selector_labels`;

const GROUP_SNAPSHOT_SQL = `SELECT g.id AS "groupId", g.name, g.selector_labels AS selector,
  (SELECT count(*)::int FROM (${GROUP_MEMBERS('g')}) AS members) AS resolved
  FROM recipient_groups g WHERE g.id = ANY ($1::uuid[])`;

/**
 * A distribution and every recipient's pending delivery in ONE statement: the named recipients ∪ the groups'
 * members (UNION: a recipient in two groups gets one delivery), each delivery ID 16 random bytes; no per-row
 * round trip. One `distributed` event for the distribution (not one per delivery: its 100,000 rows would double
 * the write; each delivery's own trail starts with the "issued" of its first pull). The foreign key of the
 * deliveries on the distribution is checked at the end of the statement, when both are written.
 */
const CREATE_SQL = `
  WITH wanted AS (
    SELECT u.id FROM unnest($5::uuid[]) AS u(id)
    UNION SELECT members.recipient_id FROM recipient_groups g CROSS JOIN LATERAL (${GROUP_MEMBERS('g')}) AS members
     WHERE g.id = ANY ($6::uuid[])
  ), delivery AS (
    INSERT INTO deliveries (id, content_id, status, issued_at, expires_at, distribution_id, recipient_id)
    SELECT encode(gen_random_bytes(16), 'hex')::uuid, $2, 'pending', now(), now() + make_interval(secs => $8::double precision / 1000), $1, id
      FROM wanted
    RETURNING 1
  ), distribution AS (
    INSERT INTO distributions (id, content_id, note, due_at, sources, recipients_total)
    SELECT $1, $2, $3, $4, $7::jsonb, count(*) FROM delivery
    RETURNING id, recipients_total
  ), ${eventCtes(`SELECT NULL::uuid, 'distributed', NULL, NULL, jsonb_build_object('distributionId', id, 'recipients', recipients_total) FROM distribution`)}
  SELECT distribution.recipients_total AS total, event.id, event.at FROM distribution, event`;

/** Counts of current deliveries by status: an index-only scan of deliveries_distribution_status_idx. */
const COUNTS_SQL = `SELECT status, count(*)::int AS count FROM deliveries
  WHERE distribution_id = $1 AND NOT superseded GROUP BY status`;

/**
 * A keyset page of current deliveries by recipient id. The page is cut in the subquery, which walks
 * deliveries_distribution_recipient_idx (distribution_id, recipient_id) in order and stops at `limit`; only then
 * are the page's recipients joined (by primary key). Joined first, PostgreSQL joined all 100,000 and sorted them:
 * 790 ms at 100,000 deliveries (npm run bench, distributions).
 */
const PAGE_SQL = (after: boolean) => `SELECT d.recipient_id AS "recipientId", r.name, r.email, d.id AS "deliveryId", d.status,
    d.client_fingerprint AS fingerprint, d.issued_at AS "issuedAt", d.sent_at AS "sentAt", d.confirmed_at AS "confirmedAt"
  FROM (SELECT * FROM deliveries
         WHERE distribution_id = $1 AND NOT superseded AND status = ANY ($2::text[])${after ? ' AND recipient_id > $4' : ''}
         ORDER BY recipient_id LIMIT $3) d
  JOIN recipients r ON r.id = d.recipient_id
  ORDER BY d.recipient_id`;

/** The statements behind GET /api/distributions/:id?status=unconfirmed, as run: the benchmark prints their plans. */
export function summaryStatements(id: string, limit: number): Record<string, { sql: string; params: unknown[] }> {
  return {
    'counts by status': { sql: COUNTS_SQL, params: [id] },
    'first page of "not received"': { sql: PAGE_SQL(false), params: [id, UNCONFIRMED_STATUSES, limit] },
  };
}

/** pending → withdrawn, and one `withdrawn` event for the distribution. */
const WITHDRAW_SQL = `
  WITH withdrawn AS (
    UPDATE deliveries SET status = 'withdrawn' WHERE distribution_id = $1 AND NOT superseded AND status = 'pending' RETURNING 1
  ), ${eventCtes(`SELECT NULL::uuid, 'withdrawn', 'distribution cancelled', NULL,
        jsonb_build_object('distributionId', $1::uuid, 'withdrawn', (SELECT count(*) FROM withdrawn))`)}
  SELECT event.id, event.at, (SELECT count(*)::int FROM withdrawn) AS withdrawn FROM event`;

/**
 * A re-send: the current sent, failed or expired deliveries (of one recipient, or all) superseded by new pending
 * ones that name them (reissued_from), each old one with a `reissued` event; set-based. The old row leaves the
 * unique partial index as it is updated, before its successor is inserted.
 */
const RESEND_SQL = (one: boolean) => `
  WITH old AS (
    UPDATE deliveries SET superseded = true
     WHERE distribution_id = $1 AND NOT superseded AND status IN ('sent', 'failed', 'expired')${one ? ' AND recipient_id = $3' : ''}
    RETURNING id, content_id, recipient_id
  ), fresh AS (
    INSERT INTO deliveries (id, content_id, status, issued_at, expires_at, distribution_id, recipient_id, reissued_from)
    SELECT encode(gen_random_bytes(16), 'hex')::uuid, content_id, 'pending', now(), now() + make_interval(secs => $2::double precision / 1000),
           $1, recipient_id, id FROM old
    RETURNING id, reissued_from
  ), ${eventCtes(`SELECT reissued_from, 'reissued', NULL, NULL, jsonb_build_object('newDeliveryId', id, 'distributionId', $1::uuid) FROM fresh ORDER BY reissued_from`)}
  SELECT event.id, event.at, event.delivery_id, (event.detail ->> 'newDeliveryId') AS "newDeliveryId" FROM event ORDER BY event.id`;

const UNCONFIRMED = `ARRAY['${UNCONFIRMED_STATUSES.join("','")}']`;

/** Distributions past due (once each): one `recipient.overdue` event per unconfirmed current delivery. */
const OVERDUE_SQL = `
  WITH due AS (
    UPDATE distributions SET overdue_at = now()
     WHERE overdue_at IS NULL AND cancelled_at IS NULL AND completed_at IS NULL AND due_at <= now()
    RETURNING id, due_at
  ), late AS (
    SELECT d.id, due.id AS distribution_id, d.recipient_id, due.due_at FROM due
      JOIN deliveries d ON d.distribution_id = due.id AND NOT d.superseded AND d.status = ANY (${UNCONFIRMED})
  ), ${eventCtes(`SELECT id, 'recipient.overdue', 'not confirmed by its due time', NULL,
        jsonb_build_object('distributionId', distribution_id, 'recipientId', recipient_id, 'dueAt', due_at) FROM late ORDER BY distribution_id, recipient_id`)}
  SELECT event.id, event.at, event.delivery_id, event.detail FROM event ORDER BY event.id`;

/** Distributions whose current deliveries are all confirmed: completed_at and a `distribution.completed` event. */
const COMPLETED_SQL = `
  WITH done AS (
    UPDATE distributions x SET completed_at = now()
     WHERE x.completed_at IS NULL AND x.cancelled_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.distribution_id = x.id AND NOT d.superseded AND d.status = ANY (${UNCONFIRMED}))
    RETURNING x.id, x.recipients_total
  ), ${eventCtes(`SELECT NULL::uuid, 'distribution.completed', NULL, NULL,
        jsonb_build_object('distributionId', id, 'recipients', recipients_total) FROM done ORDER BY id`)}
  SELECT event.id, event.at, event.delivery_id, event.detail FROM event ORDER BY event.id`;

/** Late confirmations reinstated per sweep, at most (the next sweep takes the rest). */
const LATE_CONFIRMED_BATCH = 1000;

/**
 * Step 1 of reinstating a superseded delivery that was confirmed after its re-send (the recipient kept the first
 * bundle and confirmed it): its unconfirmed successor is retired (superseded; a pending one withdrawn), with a
 * `withdrawn` event naming the confirmed one. The UPDATE rechecks "still current, still unconfirmed" on the locked row.
 */
const RETIRE_SUCCESSORS_SQL = `
  WITH late AS (
    SELECT DISTINCT ON (cur.id) cur.id, old.id AS confirmed_id, cur.distribution_id
      FROM deliveries old
      JOIN deliveries cur ON cur.distribution_id = old.distribution_id AND cur.recipient_id = old.recipient_id AND NOT cur.superseded
     WHERE old.distribution_id IS NOT NULL AND old.superseded AND old.status = 'confirmed' AND cur.status <> 'confirmed'
     ORDER BY cur.id, old.confirmed_at
     LIMIT ${LATE_CONFIRMED_BATCH}
  ), retired AS (
    UPDATE deliveries d SET superseded = true, status = CASE WHEN d.status = 'pending' THEN 'withdrawn' ELSE d.status END
      FROM late WHERE d.id = late.id AND NOT d.superseded AND d.status <> 'confirmed'
    RETURNING d.id, d.status, late.confirmed_id, late.distribution_id
  ), ${eventCtes(`SELECT id, 'withdrawn', 'an earlier delivery to the recipient was confirmed', NULL,
        jsonb_build_object('distributionId', distribution_id, 'confirmedDeliveryId', confirmed_id) FROM retired ORDER BY id`)}
  SELECT event.id, event.at, event.delivery_id, event.detail, retired.status, retired.confirmed_id
    FROM event JOIN retired ON retired.id = event.delivery_id ORDER BY event.id`;

/** Step 2: the confirmed ones become their recipients' current deliveries (after step 1, for the unique index). */
const REINSTATE_SQL = `UPDATE deliveries SET superseded = false WHERE id = ANY ($1::uuid[]) AND superseded AND status = 'confirmed'`;

type EventRow = { id: string; at: Date; delivery_id: string | null; detail: EventInput['detail'] };

/** Distributions and their recipients' deliveries: every statement of the feature's admin side. */
@Injectable()
export class DistributionRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async unknownRecipients(work: Work, ids: string[]): Promise<string[]> {
    const rows = await work.manager.query<{ id: string }[]>(UNKNOWN_RECIPIENTS_SQL, [ids]);
    return rows.map(({ id }) => id);
  }

  groupSnapshots(work: Work, ids: string[]): Promise<GroupSnapshot[]> {
    return work.manager.query<GroupSnapshot[]>(GROUP_SNAPSHOT_SQL, [ids]);
  }

  async create(
    work: Work,
    d: {
      id: string;
      contentId: string;
      note: string | null;
      dueAt: Date | null;
      recipients: string[];
      groups: string[];
      sources: GroupSnapshot[];
      ttlMs: number;
    },
  ): Promise<number> {
    const [row] = await work.manager.query<{ total: number; id: string; at: Date }[]>(CREATE_SQL, [
      d.id,
      d.contentId,
      d.note,
      d.dueAt,
      d.recipients,
      d.groups,
      JSON.stringify(d.sources),
      d.ttlMs,
    ]);
    const event: EventInput = { deliveryId: null, type: 'distributed', detail: { distributionId: d.id, recipients: row.total } };
    work.recorded(recordedEvents([event], [row]));
    return row.total;
  }

  async findOne(id: string, work?: Work, lock = false): Promise<DistributionRow | null> {
    const sql = `SELECT ${DISTRIBUTION_COLUMNS} FROM distributions x JOIN contents c ON c.id = x.content_id WHERE x.id = $1${lock ? ' FOR UPDATE OF x' : ''}`;
    const [row] = await (work?.manager ?? this.dataSource.manager).query<DistributionRow[]>(sql, [id]);
    return row ?? null;
  }

  /** Newest first (a full scan of distributions: one row per distribution, not per recipient). */
  list(limit: number): Promise<DistributionRow[]> {
    return this.dataSource.query<DistributionRow[]>(
      `SELECT ${DISTRIBUTION_COLUMNS} FROM distributions x JOIN contents c ON c.id = x.content_id ORDER BY x.created_at DESC, x.id LIMIT $1`,
      [limit],
    );
  }

  /** Per-status counts of the current deliveries of each of `ids`. */
  async countsOf(ids: string[]): Promise<Map<string, { status: DeliveryStatus; count: number }[]>> {
    const rows = await this.dataSource.query<{ distribution_id: string; status: DeliveryStatus; count: number }[]>(
      `SELECT distribution_id, status, count(*)::int AS count FROM deliveries WHERE distribution_id = ANY ($1::uuid[]) AND NOT superseded GROUP BY 1, 2`,
      [ids],
    );
    const map = new Map<string, { status: DeliveryStatus; count: number }[]>(ids.map((id) => [id, []]));
    for (const { distribution_id, status, count } of rows) map.get(distribution_id)!.push({ status, count });
    return map;
  }

  /** ANALYZE deliveries: fresh planner statistics after a large distribution was written. */
  async refreshStatistics(): Promise<void> {
    await this.dataSource.query('ANALYZE deliveries');
  }

  counts(id: string): Promise<{ status: DeliveryStatus; count: number }[]> {
    return this.dataSource.query(COUNTS_SQL, [id]);
  }

  page(id: string, statuses: DeliveryStatus[], limit: number, after: string | undefined): Promise<RecipientRow[]> {
    const params: unknown[] = [id, statuses, limit];
    if (after) params.push(after);
    return this.dataSource.query<RecipientRow[]>(PAGE_SQL(after !== undefined), params);
  }

  async cancel(work: Work, id: string): Promise<number> {
    await work.manager.query(`UPDATE distributions SET cancelled_at = now() WHERE id = $1`, [id]);
    const [row] = await work.manager.query<{ id: string; at: Date; withdrawn: number }[]>(WITHDRAW_SQL, [id]);
    const event: EventInput = {
      deliveryId: null,
      type: 'withdrawn',
      reason: 'distribution cancelled',
      detail: { distributionId: id, withdrawn: row.withdrawn },
    };
    work.recorded(recordedEvents([event], [row]));
    return row.withdrawn;
  }

  /** The recipient's current delivery in the distribution, locked. */
  async currentOf(work: Work, id: string, recipientId: string): Promise<{ id: string; status: DeliveryStatus } | null> {
    const [row] = await work.manager.query<{ id: string; status: DeliveryStatus }[]>(
      `SELECT id, status FROM deliveries WHERE distribution_id = $1 AND recipient_id = $2 AND NOT superseded FOR UPDATE`,
      [id, recipientId],
    );
    return row ?? null;
  }

  async resend(work: Work, id: string, ttlMs: number, recipientId: string | undefined): Promise<{ from: string; to: string }[]> {
    const params: unknown[] = [id, ttlMs];
    if (recipientId) params.push(recipientId);
    const rows = await work.manager.query<(EventRow & { newDeliveryId: string })[]>(RESEND_SQL(recipientId !== undefined), params);
    const events: EventInput[] = rows.map((r) => ({
      deliveryId: r.delivery_id,
      type: 'reissued',
      detail: { newDeliveryId: r.newDeliveryId, distributionId: id },
    }));
    work.recorded(recordedEvents(events, rows));
    return rows.map((r) => ({ from: r.delivery_id!, to: r.newDeliveryId }));
  }

  /** The sweep: overdue, then completed (each its own autocommit statement). Returns how many events each wrote. */
  async sweepOverdue(work: Work): Promise<number> {
    return this.sweepStatement(work, OVERDUE_SQL, 'recipient.overdue', 'not confirmed by its due time');
  }

  async sweepCompleted(work: Work): Promise<number> {
    return this.sweepStatement(work, COMPLETED_SQL, 'distribution.completed', null);
  }

  /**
   * Late confirmations of superseded deliveries: each becomes its recipient's current delivery again, so counts,
   * pages, completion and overdue see the recipient as confirmed (RETIRE_SUCCESSORS_SQL, REINSTATE_SQL). Inside
   * `work`, a transaction. Returns how many were reinstated.
   */
  async reinstateLateConfirmations(work: Work): Promise<number> {
    const rows = await work.manager.query<(EventRow & { status: DeliveryStatus; confirmed_id: string })[]>(RETIRE_SUCCESSORS_SQL);
    if (rows.length === 0) return 0;
    work.recorded(
      recordedEvents(
        rows.map((r) => ({
          deliveryId: r.delivery_id,
          type: 'withdrawn',
          reason: 'an earlier delivery to the recipient was confirmed',
          detail: r.detail,
          status: r.status === 'withdrawn' ? 'withdrawn' : null,
        })),
        rows,
      ),
    );
    await work.manager.query(REINSTATE_SQL, [rows.map((r) => r.confirmed_id)]);
    return rows.length;
  }

  private async sweepStatement(work: Work, sql: string, type: EventInput['type'], reason: string | null): Promise<number> {
    const rows = await work.manager.query<EventRow[]>(sql);
    work.recorded(
      recordedEvents(
        rows.map((r) => ({ deliveryId: r.delivery_id, type, reason, detail: r.detail })),
        rows,
      ),
    );
    return rows.length;
  }

  /** Receipts of the distribution's current confirmed deliveries, by delivery id keyset. */
  receiptsPage(id: string, after: string | null, limit: number): Promise<{ id: string; receipt: Buffer }[]> {
    return this.dataSource.query(
      `SELECT id, receipt FROM deliveries WHERE distribution_id = $1 AND NOT superseded AND status = 'confirmed' AND receipt IS NOT NULL
         AND id > $2 ORDER BY id LIMIT $3`,
      [id, after ?? '00000000-0000-0000-0000-000000000000', limit],
    );
  }

  /** The audit trail of the distribution: its own events and those of its deliveries (and the ones they superseded). */
  auditPage(
    id: string,
    after: string,
    limit: number,
  ): Promise<
    {
      id: string;
      delivery_id: string | null;
      type: string;
      reason: string | null;
      remote_address: string | null;
      at: Date;
      detail: unknown;
    }[]
  > {
    return this.dataSource.query(
      `SELECT e.id, e.delivery_id, e.type, e.reason, e.remote_address, e.at, e.detail FROM delivery_events e
        WHERE e.id > $2 AND (e.detail ->> 'distributionId' = $1::uuid::text
           OR e.delivery_id IN (SELECT d.id FROM deliveries d WHERE d.distribution_id = $1::uuid AND NOT d.superseded
                                UNION SELECT d.reissued_from FROM deliveries d WHERE d.distribution_id = $1 AND NOT d.superseded AND d.reissued_from IS NOT NULL))
        ORDER BY e.id LIMIT $3`,
      [id, after, limit],
    );
  }
}
