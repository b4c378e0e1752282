import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 3, manager side: deliveries expire (expired_at) and can be re-issued (reissued_from);
 * webhooks with a durable outbox (webhook_jobs, written in the transaction of the event) and a log
 * of every POST (webhook_attempts).
 */
export class ExpiryReissueWebhooks1795500000000 implements MigrationInterface {
  name = 'ExpiryReissueWebhooks1795500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE deliveries ADD COLUMN expired_at timestamptz NULL`);
    await queryRunner.query(`ALTER TABLE deliveries ADD COLUMN reissued_from uuid NULL REFERENCES deliveries (id)`);
    // The expiry sweep reads only what can still expire, oldest expiry first.
    await queryRunner.query(`CREATE INDEX deliveries_expiry_idx ON deliveries (expires_at) WHERE status IN ('issued', 'sent')`);
    await queryRunner.query(`CREATE INDEX deliveries_reissued_from_idx ON deliveries (reissued_from) WHERE reissued_from IS NOT NULL`);
    // Counts per content and status; the CSV export pages by (issued_at, id).
    await queryRunner.query(`CREATE INDEX deliveries_content_id_status_idx ON deliveries (content_id, status)`);
    await queryRunner.query(`CREATE INDEX deliveries_issued_at_id_idx ON deliveries (issued_at, id)`);

    await queryRunner.query(`
      CREATE TABLE webhooks (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        url text NOT NULL,
        secret text NOT NULL,
        events text[] NULL,
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);

    await queryRunner.query(`
      CREATE TABLE webhook_jobs (
        id bigserial PRIMARY KEY,
        webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        event_id bigint NOT NULL REFERENCES delivery_events (id),
        delivery_id uuid NULL,
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        locked_until timestamptz NULL,
        body text NULL,
        last_error text NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        completed_at timestamptz NULL
      )`);
    await queryRunner.query(`CREATE INDEX webhook_jobs_due_idx ON webhook_jobs (next_attempt_at, id) WHERE state = 'pending'`);
    // "Is an earlier event of this delivery still pending for this webhook?"
    await queryRunner.query(`CREATE INDEX webhook_jobs_order_idx ON webhook_jobs (webhook_id, delivery_id, id) WHERE state = 'pending'`);

    await queryRunner.query(`
      CREATE TABLE webhook_attempts (
        id bigserial PRIMARY KEY,
        webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        job_id bigint NOT NULL REFERENCES webhook_jobs (id) ON DELETE CASCADE,
        event_id bigint NOT NULL,
        delivery_id uuid NULL,
        attempt integer NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        duration_ms integer NOT NULL,
        status_code integer NULL,
        error text NULL,
        success boolean NOT NULL
      )`);
    await queryRunner.query(`CREATE INDEX webhook_attempts_webhook_id_idx ON webhook_attempts (webhook_id, id)`);
    await queryRunner.query(`CREATE INDEX webhook_attempts_job_id_idx ON webhook_attempts (job_id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE webhook_attempts`);
    await queryRunner.query(`DROP TABLE webhook_jobs`);
    await queryRunner.query(`DROP TABLE webhooks`);
    await queryRunner.query(`DROP INDEX deliveries_issued_at_id_idx`);
    await queryRunner.query(`DROP INDEX deliveries_content_id_status_idx`);
    await queryRunner.query(`DROP INDEX deliveries_reissued_from_idx`);
    await queryRunner.query(`DROP INDEX deliveries_expiry_idx`);
    await queryRunner.query(`ALTER TABLE deliveries DROP COLUMN reissued_from`);
    await queryRunner.query(`ALTER TABLE deliveries DROP COLUMN expired_at`);
  }
}
