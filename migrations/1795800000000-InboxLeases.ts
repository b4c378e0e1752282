import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 16, acquire next with deletion: `POST /api/inbox/next` leases a recipient's waiting delivery to one
 * installation for a while. The lease is a row of its own table, not columns of deliveries: a lease taken and
 * released on every pull would otherwise rewrite the delivery row (no HOT update on full pages) and every one of
 * its many indexes, twice per delivery. Live leases are few (about one per connected agent): this table stays small.
 * A confirmed delivery's lease is deleted by the ack; an expired one by the lease sweep (which notifies the
 * recipient), or replaced by the next lease of the same delivery.
 */
export class InboxLeases1795800000000 implements MigrationInterface {
  name = 'InboxLeases1795800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE inbox_leases (
        delivery_id uuid PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
        fingerprint char(64) NOT NULL,
        leased_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      )`);
    // The lease sweep: the leases that expired, oldest first.
    await queryRunner.query(`CREATE INDEX inbox_leases_expires_at_idx ON inbox_leases (expires_at)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE inbox_leases`);
  }
}
