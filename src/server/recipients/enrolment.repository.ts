import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';

/** An enrolment code as stored (never the code itself). */
export interface EnrolmentCodeRow {
  id: string;
  recipientId: string | null;
  name: string | null;
  email: string | null;
  labels: string[];
  expiresAt: Date;
  usedBy: string | null;
}

export interface NewEnrolmentCode {
  codeHash: string;
  recipientId: string | null;
  name: string | null;
  email: string | null;
  labels: string[];
  expiresAt: Date;
}

export interface NewInstallation {
  fingerprint: string;
  recipientId: string;
  publicKey: Buffer;
  enrolledFrom: string;
}

const CODE_COLUMNS = `id, recipient_id AS "recipientId", name, email, labels, expires_at AS "expiresAt", used_by AS "usedBy"`;

/** enrolment_codes and the statements of one enrolment (each in the caller's transaction). */
@Injectable()
export class EnrolmentRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Stores a code; null when its hash is taken already (40 random bits: the caller draws again). */
  async insertCode(code: NewEnrolmentCode): Promise<{ id: string; expiresAt: Date } | null> {
    const rows = await this.dataSource.query<{ id: string; expiresAt: Date }[]>(
      `INSERT INTO enrolment_codes (code_hash, recipient_id, name, email, labels, expires_at)
       VALUES ($1, $2, $3, $4, $5::text[], $6)
       ON CONFLICT (code_hash) DO NOTHING
       RETURNING id, expires_at AS "expiresAt"`,
      [code.codeHash, code.recipientId, code.name, code.email, code.labels, code.expiresAt],
    );
    return rows[0] ?? null;
  }

  /** The code with this hash, locked until the transaction ends: two keys racing on one code queue here. */
  async lockCode(manager: EntityManager, codeHash: string): Promise<EnrolmentCodeRow | null> {
    const rows = await manager.query<EnrolmentCodeRow[]>(`SELECT ${CODE_COLUMNS} FROM enrolment_codes WHERE code_hash = $1 FOR UPDATE`, [
      codeHash,
    ]);
    return rows[0] ?? null;
  }

  /** The recipient (id and name) an installation key is enrolled to, if it is. */
  async installationOf(manager: EntityManager, fingerprint: string): Promise<{ recipientId: string; name: string } | null> {
    const rows = await manager.query<{ recipientId: string; name: string }[]>(
      `SELECT i.recipient_id AS "recipientId", r.name FROM recipient_installations i JOIN recipients r ON r.id = i.recipient_id
        WHERE i.fingerprint = $1`,
      [fingerprint],
    );
    return rows[0] ?? null;
  }

  async recipientName(recipientId: string, manager: EntityManager = this.dataSource.manager): Promise<string | null> {
    const rows = await manager.query<{ name: string }[]>(`SELECT name FROM recipients WHERE id = $1`, [recipientId]);
    return rows[0]?.name ?? null;
  }

  async insertRecipient(manager: EntityManager, recipient: { name: string; email: string | null; labels: string[] }): Promise<string> {
    const [row] = await manager.query<{ id: string }[]>(
      `INSERT INTO recipients (name, email, labels) VALUES ($1, $2, $3::text[]) RETURNING id`,
      [recipient.name, recipient.email, recipient.labels],
    );
    return row.id;
  }

  /** Binds the installation to its recipient (seen now: enrolment is its first signed request) and marks the code used by it. */
  async bindInstallation(manager: EntityManager, codeId: string, installation: NewInstallation): Promise<void> {
    await manager.query(
      `WITH used AS (UPDATE enrolment_codes SET used_at = now(), used_by = $1 WHERE id = $5)
       INSERT INTO recipient_installations (fingerprint, recipient_id, public_key, enrolled_from, last_seen_at)
       VALUES ($1, $2, $3, $4, now())`,
      [installation.fingerprint, installation.recipientId, installation.publicKey, installation.enrolledFrom, codeId],
    );
  }
}
