import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

export interface InboxRow {
  deliveryId: string;
  distributionId: string;
  contentId: string;
  name: string;
  size: number;
  mediaType: string;
  sha256: string;
  note: string | null;
  dueAt: Date | null;
  /** The end of a live lease (POST /api/inbox/next), of this or another installation; null when not leased. */
  leaseExpiresAt: Date | null;
}

/** The delivery leased by `lease`, if any, and how many still wait for the installation after it. */
export interface LeaseResult {
  /** The delivery leased; null when nothing waits, or when the one chosen was leased by a concurrent call (lost). */
  leased: InboxRow | null;
  /** A candidate was found but another call leased it first (retry). */
  lost: boolean;
  waiting: number;
}

/** An installation with an open event stream. */
export interface Listener {
  recipientId: string;
  fingerprint: string;
}

/** Whose waiting counts a notice is about: recipients named, or those of distributions, or of deliveries. */
export interface NoticeScope {
  recipientIds: string[];
  distributionIds: string[];
  deliveryIds: string[];
}

/** A recipient's waiting delivery that `d` is: what GET /api/inbox lists (with `x` its distribution, `c` its content). */
const IN_INBOX = (recipient: string, fingerprint: string) =>
  `d.recipient_id = ${recipient} AND d.status IN ('pending', 'issued', 'sent', 'failed') AND NOT d.superseded
    AND x.cancelled_at IS NULL AND c.deleted_at IS NULL AND (d.status = 'pending' OR d.client_fingerprint = ${fingerprint})`;

const INBOX_COLUMNS = `d.id AS "deliveryId", d.distribution_id AS "distributionId", d.content_id AS "contentId", c.name,
    c.size::float8 AS size, c.media_type AS "mediaType", c.sha256, x.note, x.due_at AS "dueAt"`;

const INBOX_JOINS = `deliveries d JOIN distributions x ON x.id = d.distribution_id JOIN contents c ON c.id = d.content_id`;

/** A recipient's waiting deliveries, by deliveries_recipient_waiting_idx: pending, or sealed to this installation. */
const INBOX_SQL = `SELECT ${INBOX_COLUMNS}, l.expires_at AS "leaseExpiresAt"
  FROM ${INBOX_JOINS} LEFT JOIN inbox_leases l ON l.delivery_id = d.id AND l.expires_at > now()
  WHERE ${IN_INBOX('$1', '$2')}
  ORDER BY d.issued_at, d.id`;

/**
 * Acquire next with deletion, one statement: the acked delivery's lease released ($4, once its
 * confirmation committed), then the oldest waiting delivery without a live lease leased to this installation
 * ($2) for $3 seconds. FOR NO KEY UPDATE … SKIP LOCKED: a concurrent call skips the row this one chose (NO KEY:
 * the audit trail's foreign key checks on the row are not blocked). A call whose snapshot predates another's
 * committed lease may still choose the same row once it is unlocked: the upsert replaces only an expired lease,
 * so that call leases nothing (`lost`) and tries again. `waiting` counts on the statement's snapshot, which does
 * not see its own lease: minus the one leased.
 */
const LEASE_SQL = `
  WITH released AS (
    DELETE FROM inbox_leases WHERE delivery_id = $4::uuid AND fingerprint = $2 RETURNING delivery_id
  ), candidate AS (
    SELECT ${INBOX_COLUMNS}
      FROM ${INBOX_JOINS} LEFT JOIN inbox_leases l ON l.delivery_id = d.id
     WHERE ${IN_INBOX('$1', '$2')} AND (l.delivery_id IS NULL OR l.expires_at <= now())
     ORDER BY d.issued_at, d.id
     LIMIT 1
     FOR NO KEY UPDATE OF d SKIP LOCKED
  ), leased AS (
    INSERT INTO inbox_leases (delivery_id, fingerprint, expires_at)
    SELECT "deliveryId", $2, now() + make_interval(secs => $3) FROM candidate
    ON CONFLICT (delivery_id) DO UPDATE SET fingerprint = excluded.fingerprint, leased_at = excluded.leased_at, expires_at = excluded.expires_at
     WHERE inbox_leases.expires_at <= now()
    RETURNING delivery_id, expires_at
  )
  SELECT candidate.*, leased.expires_at AS "leaseExpiresAt",
         (SELECT count(*)::int FROM ${INBOX_JOINS} LEFT JOIN inbox_leases l ON l.delivery_id = d.id AND l.expires_at > now()
           WHERE ${IN_INBOX('$1', '$2')} AND l.delivery_id IS NULL) - (SELECT count(*)::int FROM leased) AS waiting
    FROM (SELECT 1) AS one LEFT JOIN candidate ON true LEFT JOIN leased ON leased.delivery_id = candidate."deliveryId"`;

/**
 * How many deliveries wait (in the inbox, no live lease) for each listening installation ($1, $2) whose recipient
 * is in the scope: named ($3), of the distributions ($4), or of the deliveries ($5). One statement for all of them,
 * whatever their number; only installations with something waiting are returned.
 */
const WAITING_COUNTS_SQL = `
  WITH scope AS (
    SELECT unnest($3::uuid[]) AS recipient_id
    UNION SELECT recipient_id FROM deliveries WHERE distribution_id = ANY($4::uuid[]) AND NOT superseded AND recipient_id IS NOT NULL
    UNION SELECT recipient_id FROM deliveries WHERE id = ANY($5::uuid[]) AND recipient_id IS NOT NULL
  ), s AS (
    SELECT * FROM unnest($1::uuid[], $2::text[]) AS s(recipient_id, fingerprint) WHERE s.recipient_id IN (SELECT recipient_id FROM scope)
  )
  SELECT s.recipient_id AS "recipientId", s.fingerprint, count(*)::int AS count
    FROM s JOIN ${INBOX_JOINS} ON d.recipient_id = s.recipient_id
    LEFT JOIN inbox_leases l ON l.delivery_id = d.id AND l.expires_at > now()
   WHERE ${IN_INBOX('s.recipient_id', 's.fingerprint')} AND l.delivery_id IS NULL
   GROUP BY s.recipient_id, s.fingerprint`;

/**
 * Leases that expired, oldest first, deleted (SKIP LOCKED: a lease being renewed or swept elsewhere is left to
 * that); with the recipient of each, to notify the ones whose delivery is waiting again.
 */
const SWEEP_EXPIRED_SQL = `
  DELETE FROM inbox_leases l USING deliveries d
   WHERE d.id = l.delivery_id
     AND l.delivery_id IN (SELECT delivery_id FROM inbox_leases WHERE expires_at <= now() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
  RETURNING l.delivery_id AS "deliveryId", d.recipient_id AS "recipientId"`;

@Injectable()
export class InboxRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  list(recipientId: string, fingerprint: string): Promise<InboxRow[]> {
    return this.dataSource.query<InboxRow[]>(INBOX_SQL, [recipientId, fingerprint]);
  }

  /** Releases `release`'s lease (if given) and leases the next waiting delivery: see LEASE_SQL. */
  async lease(recipientId: string, fingerprint: string, seconds: number, release: string | null): Promise<LeaseResult> {
    const [row] = await this.dataSource.transaction(async (manager) => {
      // A lease is soft state: one lost in a crash is a delivery back in the inbox, as if its lease had expired (the
      // agent recognises a file it saved twice). So its commit does not wait for the WAL flush, which was one of
      // the handful of commits of every cycle (a lost ack never is: the confirmation commits in its own service).
      await manager.query(`SET LOCAL synchronous_commit = off`);
      return manager.query<(Partial<InboxRow> & { waiting: number })[]>(LEASE_SQL, [recipientId, fingerprint, seconds, release]);
    });
    const { waiting, ...item } = row;
    if (!item.deliveryId) return { leased: null, lost: false, waiting };
    if (!item.leaseExpiresAt) return { leased: null, lost: true, waiting };
    return { leased: item as InboxRow, lost: false, waiting };
  }

  /** Deletes a lease of this installation (its delivery was confirmed). */
  async release(deliveryId: string, fingerprint: string): Promise<void> {
    await this.dataSource.query(`DELETE FROM inbox_leases WHERE delivery_id = $1 AND fingerprint = $2`, [deliveryId, fingerprint]);
  }

  /** Waiting counts of the listeners in the scope (see WAITING_COUNTS_SQL); those with none are left out. */
  waitingCounts(listeners: Listener[], scope: NoticeScope): Promise<(Listener & { count: number })[]> {
    return this.dataSource.query(WAITING_COUNTS_SQL, [
      listeners.map(({ recipientId }) => recipientId),
      listeners.map(({ fingerprint }) => fingerprint),
      scope.recipientIds,
      scope.distributionIds,
      scope.deliveryIds,
    ]);
  }

  /** Deletes up to `limit` expired leases; returns their deliveries and recipients. */
  sweepExpired(limit: number): Promise<{ deliveryId: string; recipientId: string | null }[]> {
    return this.dataSource
      .query<[{ deliveryId: string; recipientId: string | null }[], number]>(SWEEP_EXPIRED_SQL, [limit])
      .then(([rows]) => rows);
  }
}
