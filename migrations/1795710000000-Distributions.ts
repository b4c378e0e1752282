import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 15, what and to whom: a distribution is one content to many recipients. Each recipient's delivery is a
 * deliveries row written when the distribution is created, `pending` until the recipient pulls it: only then
 * is it sealed to the installation that pulled (confirm key, key id, plug-in data, requester IP are set).
 * A re-send supersedes the recipient's current delivery with a new one; at most one current per recipient.
 */
export class Distributions1795710000000 implements MigrationInterface {
  name = 'Distributions1795710000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE distributions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        content_id uuid NOT NULL REFERENCES contents (id),
        note text NULL,
        due_at timestamptz NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        cancelled_at timestamptz NULL,
        completed_at timestamptz NULL,
        overdue_at timestamptz NULL,
        recipients_total integer NOT NULL,
        sources jsonb NOT NULL
      )`);

    await queryRunner.query(`ALTER TABLE deliveries ADD COLUMN distribution_id uuid NULL REFERENCES distributions (id)`);
    await queryRunner.query(`ALTER TABLE deliveries ADD COLUMN recipient_id uuid NULL REFERENCES recipients (id)`);
    await queryRunner.query(`ALTER TABLE deliveries ADD COLUMN superseded boolean NOT NULL DEFAULT false`);
    await queryRunner.query(`ALTER TABLE deliveries ALTER COLUMN requester_ip DROP NOT NULL`);
    await queryRunner.query(`ALTER TABLE deliveries ALTER COLUMN confirm_key DROP NOT NULL`);
    await queryRunner.query(`ALTER TABLE deliveries ALTER COLUMN key_id DROP NOT NULL`);
    await queryRunner.query(`ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check`);
    await queryRunner.query(`
      ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
        CHECK (status IN ('pending', 'issued', 'sent', 'confirmed', 'failed', 'expired', 'withdrawn'))`);
    // Only a delivery nobody has pulled yet (pending, or withdrawn before a pull) lacks its seal.
    await queryRunner.query(`
      ALTER TABLE deliveries ADD CONSTRAINT deliveries_sealed_check
        CHECK (status IN ('pending', 'withdrawn') OR (requester_ip IS NOT NULL AND confirm_key IS NOT NULL AND key_id IS NOT NULL))`);
    // One current delivery per recipient per distribution (a recipient in two groups gets one).
    await queryRunner.query(`
      CREATE UNIQUE INDEX deliveries_distribution_recipient_idx ON deliveries (distribution_id, recipient_id)
        WHERE distribution_id IS NOT NULL AND NOT superseded`);
    // A distribution's counts by status.
    await queryRunner.query(`
      CREATE INDEX deliveries_distribution_status_idx ON deliveries (distribution_id, status)
        WHERE distribution_id IS NOT NULL AND NOT superseded`);
    // A recipient's inbox: what is addressed to it and not confirmed yet.
    await queryRunner.query(`
      CREATE INDEX deliveries_recipient_waiting_idx ON deliveries (recipient_id, issued_at)
        WHERE recipient_id IS NOT NULL AND status IN ('pending', 'issued', 'sent', 'failed') AND NOT superseded`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    // Deliveries of distributions cannot exist without them.
    await queryRunner.query(
      `DELETE FROM delivery_events WHERE delivery_id IN (SELECT id FROM deliveries WHERE distribution_id IS NOT NULL)`,
    );
    await queryRunner.query(`DELETE FROM deliveries WHERE distribution_id IS NOT NULL`);
    await queryRunner.query(`DROP INDEX deliveries_recipient_waiting_idx`);
    await queryRunner.query(`DROP INDEX deliveries_distribution_status_idx`);
    await queryRunner.query(`DROP INDEX deliveries_distribution_recipient_idx`);
    await queryRunner.query(`ALTER TABLE deliveries DROP CONSTRAINT deliveries_sealed_check`);
    await queryRunner.query(`ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check`);
    await queryRunner.query(`
      ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (status IN ('issued', 'sent', 'confirmed', 'failed', 'expired'))`);
    await queryRunner.query(`ALTER TABLE deliveries ALTER COLUMN key_id SET NOT NULL`);
    await queryRunner.query(`ALTER TABLE deliveries ALTER COLUMN confirm_key SET NOT NULL`);
    await queryRunner.query(`ALTER TABLE deliveries ALTER COLUMN requester_ip SET NOT NULL`);
    await queryRunner.query(`ALTER TABLE deliveries DROP COLUMN superseded`);
    await queryRunner.query(`ALTER TABLE deliveries DROP COLUMN recipient_id`);
    await queryRunner.query(`ALTER TABLE deliveries DROP COLUMN distribution_id`);
    await queryRunner.query(`DROP TABLE distributions`);
  }
}
