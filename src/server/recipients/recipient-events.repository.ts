import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';

export type RecipientEventType =
  'request-refused' | 'enrolment-code-created' | 'enrolled' | 'enrolment-refused' | 'recipient-updated' | 'installation-revoked';

/** One row of a recipient's audit trail (recipient_events). */
export interface RecipientEventInput {
  type: RecipientEventType;
  /** Absent: the recipient of `fingerprint`'s installation, if it has one. */
  recipientId?: string | null;
  fingerprint?: string | null;
  reason?: string | null;
  remoteAddress?: string | null;
  detail?: Record<string, unknown> | null;
}

export interface RecipientEventRow {
  id: string;
  recipientId: string | null;
  fingerprint: string | null;
  type: RecipientEventType;
  reason: string | null;
  remoteAddress: string | null;
  at: Date;
  detail: Record<string, unknown> | null;
}

// A refusal of a known installation's request belongs to that installation's recipient.
const APPEND_SQL = `
  INSERT INTO recipient_events (recipient_id, fingerprint, type, reason, remote_address, detail)
  SELECT coalesce($1::uuid, (SELECT recipient_id FROM recipient_installations WHERE fingerprint = $2)), $2, $3, $4, $5, $6::jsonb`;

const COLUMNS = `id::text AS id, recipient_id AS "recipientId", fingerprint, type, reason, remote_address AS "remoteAddress", at, detail`;

/** The recipients' audit trail: enrolments, refused requests, changes, revocations. */
@Injectable()
export class RecipientEventRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Appends one event; `manager` runs it inside a transaction, else it commits alone. */
  async append(event: RecipientEventInput, manager: EntityManager = this.dataSource.manager): Promise<void> {
    await manager.query(APPEND_SQL, [
      event.recipientId ?? null,
      event.fingerprint ?? null,
      event.type,
      event.reason ?? null,
      event.remoteAddress ?? null,
      event.detail ? JSON.stringify(event.detail) : null,
    ]);
  }

  /** A recipient's events, newest first, older than event `before` when given. */
  findByRecipient(recipientId: string, limit: number, before?: string): Promise<RecipientEventRow[]> {
    return this.dataSource.query<RecipientEventRow[]>(
      `SELECT ${COLUMNS} FROM recipient_events
        WHERE recipient_id = $1 AND ($2::bigint IS NULL OR id < $2::bigint)
        ORDER BY id DESC LIMIT $3`,
      [recipientId, before ?? null, limit],
    );
  }

  /** Events of an installation's key (enrolled or not), newest first: for refusals of keys no one enrolled. */
  findByFingerprint(fingerprint: string, limit: number): Promise<RecipientEventRow[]> {
    return this.dataSource.query<RecipientEventRow[]>(
      `SELECT ${COLUMNS} FROM recipient_events WHERE fingerprint = $1 ORDER BY id DESC LIMIT $2`,
      [fingerprint, limit],
    );
  }
}
