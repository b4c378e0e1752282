import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { PreparedStatement, PreparedStatements } from '../database/prepared-statements.js';
import { eventCtes, eventCtesOfParameters, eventParameters, recordedEvents } from '../deliveries/delivery-event.repository.js';
import type { EventInput } from '../deliveries/delivery-events.bus.js';
import type { DeliveryStatus } from '../deliveries/delivery.entity.js';
import type { Work } from '../deliveries/unit-of-work.js';
import type { ConfirmableDelivery } from './confirmation-decision.js';

/**
 * The deliveries named by a batch with what the decision needs of their contents (NULL for a deleted
 * content, as a lookup of live contents would find none). The installation's revocation is looked up only
 * for a recipient's delivery (CASE evaluates the subquery only then), so link deliveries pay nothing.
 */
const READ_DELIVERIES_SQL = `
  SELECT d.id, d.content_id, d.status, d.client_fingerprint, d.requester_ip, d.confirm_key, d.receipt,
         d.issued_at, d.sent_at, d.expires_at, d.confirmed_at, c.name AS content_name, c.size AS content_size, c.sha256 AS content_sha256,
         CASE WHEN d.recipient_id IS NOT NULL THEN
           (SELECT i.revoked_at FROM recipient_installations i WHERE i.fingerprint = d.client_fingerprint)
         END AS installation_revoked_at
    FROM deliveries d LEFT JOIN contents c ON c.id = d.content_id AND c.deleted_at IS NULL
   WHERE d.id = ANY ($1::uuid[])`;

const READ_DELIVERIES = new PreparedStatement('dcx_confirmation_read', READ_DELIVERIES_SQL);

/** The same, locked in id order: two confirmations of one delivery are decided one after the other. */
const LOCK_DELIVERIES_SQL = `${READ_DELIVERIES_SQL}
   ORDER BY d.id
     FOR UPDATE OF d`;

/** The accepted confirmations of a batch (parameters 1–4) and its events (5–9) in one statement, inside the locking transaction. */
const CONFIRM_SQL = `
  WITH confirmed AS (
    UPDATE deliveries d SET status = 'confirmed', confirmed_at = v.confirmed_at, confirmed_from = v.confirmed_from, receipt = v.receipt
      FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::bytea[]) AS v(id, confirmed_at, confirmed_from, receipt)
     WHERE d.id = v.id
  ), ${eventCtesOfParameters(5)}
  SELECT id, at FROM event ORDER BY id`;

/**
 * The same in one autocommit statement, for decisions taken on unlocked rows: each delivery is updated
 * only if its status is still the one the decision read ($5), which the UPDATE checks on the row it
 * locks (a row changed meanwhile is re-read and then left alone). Refusals (parameters 6–10) are
 * recorded whatever happens; a "confirmed" event only for a delivery this statement did confirm. The
 * rows of `event` say which: a confirmation whose delivery changed meanwhile is decided again.
 */
const CONFIRM_IF_UNCHANGED = new PreparedStatement(
  'dcx_confirmation_write',
  `
  WITH confirmed AS (
    UPDATE deliveries d SET status = 'confirmed', confirmed_at = v.confirmed_at, confirmed_from = v.confirmed_from, receipt = v.receipt
      FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::bytea[], $5::text[]) AS v(id, confirmed_at, confirmed_from, receipt, status)
     WHERE d.id = v.id AND d.status = v.status
    RETURNING d.id
  ), ${eventCtes(`
    SELECT e.delivery_id, e.type, e.reason, e.remote_address, e.detail
      FROM unnest($6::uuid[], $7::text[], $8::text[], $9::text[], $10::jsonb[]) WITH ORDINALITY AS e(delivery_id, type, reason, remote_address, detail, n)
     WHERE e.type <> 'confirmed' OR e.delivery_id IN (SELECT id FROM confirmed)
     ORDER BY e.n`)}
  SELECT id, at, delivery_id, type FROM event ORDER BY id`,
);

interface ConfirmableRow {
  id: string;
  content_id: string;
  status: DeliveryStatus;
  client_fingerprint: string | null;
  requester_ip: string | null;
  confirm_key: Buffer | null;
  receipt: Buffer | null;
  issued_at: Date;
  sent_at: Date | null;
  expires_at: Date;
  confirmed_at: Date | null;
  content_name: string | null;
  content_size: string | null;
  content_sha256: string | null;
  installation_revoked_at: Date | null;
}

/** The (id, at, delivery_id, type) rows of CONFIRM_IF_UNCHANGED's `event` CTE, sorted by id. */
interface WrittenEvent {
  id: string;
  at: Date;
  delivery_id: string | null;
  type: string;
}

/** What an acceptance writes into its delivery; `was` is the status its decision read. */
export interface Acceptance {
  id: string;
  confirmedAt: Date;
  confirmedFrom: string;
  receipt: Buffer;
  was: DeliveryStatus;
}

function toConfirmable(row: ConfirmableRow): ConfirmableDelivery {
  return {
    id: row.id,
    contentId: row.content_id,
    status: row.status,
    clientFingerprint: row.client_fingerprint,
    requesterIp: row.requester_ip,
    confirmKey: row.confirm_key,
    receipt: row.receipt,
    issuedAt: row.issued_at,
    sentAt: row.sent_at,
    expiresAt: row.expires_at,
    confirmedAt: row.confirmed_at,
    installationRevokedAt: row.installation_revoked_at,
    content: row.content_name === null ? null : { name: row.content_name, size: Number(row.content_size), sha256: row.content_sha256! },
  };
}

/** Parameters 1–4 of CONFIRM_SQL and CONFIRM_IF_UNCHANGED. */
function acceptedParameters(accepted: Acceptance[]): unknown[] {
  return [
    accepted.map(({ id }) => id),
    accepted.map(({ confirmedAt }) => confirmedAt),
    accepted.map(({ confirmedFrom }) => confirmedFrom),
    accepted.map(({ receipt }) => receipt),
  ];
}

/** [89] → [872] The statements of confirmations on the deliveries table. */
@Injectable()
export class ConfirmationRepository {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly statements: PreparedStatements,
  ) {}

  /** Runs `work` on one pooled connection (the read and the write of a batch share it). */
  async onOneConnection<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    try {
      return await work(runner.manager);
    } finally {
      await runner.release();
    }
  }

  /** The deliveries `ids` as they are, unlocked. */
  async read(manager: EntityManager, ids: string[]): Promise<ConfirmableDelivery[]> {
    return (await this.statements.query<ConfirmableRow>(READ_DELIVERIES, [ids], manager)).map(toConfirmable);
  }

  /** The deliveries `ids` locked in id order, in `work`'s transaction. */
  async lock(work: Work, ids: string[]): Promise<ConfirmableDelivery[]> {
    return (await work.manager.query<ConfirmableRow[]>(LOCK_DELIVERIES_SQL, [[...ids].sort()])).map(toConfirmable);
  }

  /**
   * Writes acceptances whose delivery still has the status read, and the events (a "confirmed" one
   * only where it did): one autocommit statement. Returns the ids of the deliveries it confirmed.
   */
  async confirmIfUnchanged(work: Work, accepted: Acceptance[], events: EventInput[]): Promise<Set<string | null>> {
    // Rows updated in id order, as the locking path locks them: overlapping batches do not deadlock.
    const sorted = [...accepted].sort((a, b) => (a.id < b.id ? -1 : 1));
    const written = await this.statements.query<WrittenEvent>(
      CONFIRM_IF_UNCHANGED,
      [...acceptedParameters(sorted), sorted.map(({ was }) => was), ...eventParameters(events)],
      work.manager,
    );
    const confirmed = new Set(written.filter(({ type }) => type === 'confirmed').map(({ delivery_id }) => delivery_id));
    work.recorded(
      recordedEvents(
        events.filter(({ type, deliveryId }) => type !== 'confirmed' || confirmed.has(deliveryId)),
        written,
      ),
    );
    return confirmed;
  }

  /** Writes acceptances on locked deliveries, and the events, in `work`'s transaction. */
  async confirm(work: Work, accepted: Acceptance[], events: EventInput[]): Promise<void> {
    const rows = await work.manager.query<
      {
        id: string;
        at: Date;
      }[]
    >(CONFIRM_SQL, [...acceptedParameters(accepted), ...eventParameters(events)]);
    work.recorded(recordedEvents(events, rows));
  }
}
