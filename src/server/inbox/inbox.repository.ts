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
}

/** A recipient's waiting deliveries, by deliveries_recipient_waiting_idx: pending, or sealed to this installation. */
const INBOX_SQL = `SELECT d.id AS "deliveryId", d.distribution_id AS "distributionId", d.content_id AS "contentId", c.name,
    c.size::float8 AS size, c.media_type AS "mediaType", c.sha256, x.note, x.due_at AS "dueAt"
  FROM deliveries d JOIN distributions x ON x.id = d.distribution_id JOIN contents c ON c.id = d.content_id
  WHERE d.recipient_id = $1 AND d.status IN ('pending', 'issued', 'sent', 'failed') AND NOT d.superseded
    AND x.cancelled_at IS NULL AND c.deleted_at IS NULL AND (d.status = 'pending' OR d.client_fingerprint = $2)
  ORDER BY d.issued_at, d.id`;

@Injectable()
export class InboxRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  list(recipientId: string, fingerprint: string): Promise<InboxRow[]> {
    return this.dataSource.query<InboxRow[]>(INBOX_SQL, [recipientId, fingerprint]);
  }
}
