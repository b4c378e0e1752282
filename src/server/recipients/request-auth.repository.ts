import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** What one signed request's nonce and key find: whether the nonce is new, and the key's installation. */
export interface NonceAndInstallation {
  fresh: boolean;
  recipientId: string | null;
  revokedAt: Date | null;
}

/**
 * One round trip per signed request: the nonce is taken (a conflict is a replay), the installation read,
 * and its last_seen_at moved on (at most once a minute, so that a busy client does not write a row per request).
 */
const TAKE_NONCE_SQL = `
  WITH fresh AS (
    INSERT INTO request_nonces (nonce) VALUES ($1) ON CONFLICT DO NOTHING RETURNING nonce
  ), installation AS (
    SELECT recipient_id, revoked_at FROM recipient_installations WHERE fingerprint = $2
  ), seen AS (
    UPDATE recipient_installations SET last_seen_at = now()
     WHERE fingerprint = $2 AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM fresh)
       AND (last_seen_at IS NULL OR last_seen_at < now() - interval '1 minute')
  )
  SELECT EXISTS (SELECT 1 FROM fresh) AS fresh,
         (SELECT recipient_id FROM installation) AS "recipientId",
         (SELECT revoked_at FROM installation) AS "revokedAt"`;

/** The nonces of signed requests (request_nonces) and the installation a request's key belongs to. */
@Injectable()
export class RequestAuthRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async takeNonce(nonce: Buffer, fingerprint: string): Promise<NonceAndInstallation> {
    const [row] = await this.dataSource.query<NonceAndInstallation[]>(TAKE_NONCE_SQL, [nonce, fingerprint]);
    return row;
  }

  /** Deletes nonces seen more than `olderThanMs` ago; returns how many. */
  async pruneNonces(olderThanMs: number): Promise<number> {
    const [row] = await this.dataSource.query<{ pruned: number }[]>(
      `WITH gone AS (DELETE FROM request_nonces WHERE seen_at < now() - make_interval(secs => $1 / 1000.0) RETURNING 1)
       SELECT count(*)::int AS pruned FROM gone`,
      [olderThanMs],
    );
    return row.pruned;
  }
}
