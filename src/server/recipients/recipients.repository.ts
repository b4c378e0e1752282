import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { InstallationOfRecipientView, InstallationView, RecipientSummaryView, RecipientView } from './dto/recipient.view.js';

export interface RecipientFilter {
  /** Part of the name or email, any case. */
  search?: string;
  /** All of these labels. */
  labels?: string[];
  limit: number;
  /** Keyset: the page starts after this (name, id). */
  after?: { name: string; id: string };
}

export interface RecipientChanges {
  name?: string;
  /** null clears it; undefined leaves it. */
  email?: string | null;
  labels?: string[];
}

const RECIPIENT_COLUMNS = `r.id, r.name, r.email, r.labels, r.created_at AS "createdAt"`;

const LIST_SQL = `
  SELECT ${RECIPIENT_COLUMNS},
         count(i.fingerprint) FILTER (WHERE i.revoked_at IS NULL)::int AS "activeInstallations",
         max(i.last_seen_at) AS "lastSeenAt"
    FROM recipients r LEFT JOIN recipient_installations i ON i.recipient_id = r.id
   WHERE ($1::text IS NULL OR r.name ILIKE $1 ESCAPE '\\' OR r.email ILIKE $1 ESCAPE '\\')
     AND ($2::text[] IS NULL OR r.labels @> $2::text[])
     AND ($3::text IS NULL OR (r.name, r.id) > ($3::text, $4::uuid))
   GROUP BY r.id
   ORDER BY r.name, r.id
   LIMIT $5`;

// UPDATEs are wrapped in a SELECT: TypeORM answers a bare UPDATE with [rows, count] instead of rows.
const UPDATE_SQL = `
  WITH r AS (
    UPDATE recipients r
       SET name = coalesce($2, r.name),
           email = CASE WHEN $3::boolean THEN $4 ELSE r.email END,
           labels = coalesce($5::text[], r.labels)
     WHERE r.id = $1
    RETURNING r.*
  ) SELECT ${RECIPIENT_COLUMNS} FROM r`;

const INSTALLATION_COLUMNS = `fingerprint, enrolled_at AS "enrolledAt", enrolled_from AS "enrolledFrom", last_seen_at AS "lastSeenAt",
  revoked_at AS "revokedAt"`;

/** recipients and their installations, as the admin routes read and change them. */
@Injectable()
export class RecipientsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** A page by name (then id), and one row more when there is a next page. */
  list(filter: RecipientFilter): Promise<RecipientSummaryView[]> {
    const pattern = filter.search === undefined ? null : `%${filter.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    return this.dataSource.query<RecipientSummaryView[]>(LIST_SQL, [
      pattern,
      filter.labels ?? null,
      filter.after?.name ?? null,
      filter.after?.id ?? null,
      filter.limit + 1,
    ]);
  }

  async findById(id: string): Promise<RecipientView | null> {
    const rows = await this.dataSource.query<RecipientView[]>(`SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE r.id = $1`, [id]);
    return rows[0] ?? null;
  }

  /** Of these ids, those that name no recipient. */
  async unknownIds(ids: string[]): Promise<string[]> {
    const rows = await this.dataSource.query<{ id: string }[]>(
      `SELECT k.id FROM unnest($1::uuid[]) WITH ORDINALITY AS k(id, ord)
        WHERE NOT EXISTS (SELECT 1 FROM recipients r WHERE r.id = k.id) ORDER BY k.ord`,
      [ids],
    );
    return rows.map((row) => row.id);
  }

  installationsOf(recipientId: string): Promise<InstallationView[]> {
    return this.dataSource.query<InstallationView[]>(
      `SELECT ${INSTALLATION_COLUMNS} FROM recipient_installations WHERE recipient_id = $1 ORDER BY enrolled_at, fingerprint`,
      [recipientId],
    );
  }

  async update(id: string, changes: RecipientChanges): Promise<RecipientView | null> {
    const rows = await this.dataSource.query<RecipientView[]>(UPDATE_SQL, [
      id,
      changes.name ?? null,
      changes.email !== undefined,
      changes.email ?? null,
      changes.labels ?? null,
    ]);
    return rows[0] ?? null;
  }

  /** Revokes an installation not revoked yet; null when there is none such (unknown, or revoked already). */
  async revoke(fingerprint: string): Promise<{ recipientId: string; revokedAt: Date } | null> {
    const rows = await this.dataSource.query<{ recipientId: string; revokedAt: Date }[]>(
      `WITH revoked AS (
         UPDATE recipient_installations SET revoked_at = now() WHERE fingerprint = $1 AND revoked_at IS NULL
         RETURNING recipient_id AS "recipientId", revoked_at AS "revokedAt"
       ) SELECT * FROM revoked`,
      [fingerprint],
    );
    return rows[0] ?? null;
  }

  async findInstallation(fingerprint: string): Promise<{ recipientId: string; revokedAt: Date | null } | null> {
    const rows = await this.dataSource.query<{ recipientId: string; revokedAt: Date | null }[]>(
      `SELECT recipient_id AS "recipientId", revoked_at AS "revokedAt" FROM recipient_installations WHERE fingerprint = $1`,
      [fingerprint],
    );
    return rows[0] ?? null;
  }

  /** An installation with its recipient's name and email, for the installation itself. */
  async findInstallationView(fingerprint: string): Promise<InstallationOfRecipientView | null> {
    const rows = await this.dataSource.query<InstallationOfRecipientView[]>(
      `SELECT i.recipient_id AS "recipientId", r.name, r.email, i.fingerprint, i.enrolled_at AS "enrolledAt"
         FROM recipient_installations i JOIN recipients r ON r.id = i.recipient_id WHERE i.fingerprint = $1`,
      [fingerprint],
    );
    return rows[0] ?? null;
  }
}
