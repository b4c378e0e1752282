import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The initial schema: contents, deliveries, delivery_events.
 * Runs on PostgreSQL 15+ and on PGlite (PostgreSQL 18, pgcrypto loaded as a PGlite extension).
 */
export class Initial1795390000000 implements MigrationInterface {
  name = 'Initial1795390000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE EXTENSION IF NOT EXISTS pgcrypto`);

    await queryRunner.query(`
      CREATE TABLE contents (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL,
        media_type text NOT NULL,
        size bigint NOT NULL,
        sha256 char(64) NOT NULL,
        crc32 bigint NOT NULL,
        storage_key text NOT NULL,
        access text NOT NULL CHECK (access IN ('public', 'token')),
        access_token_hash char(64) NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz NULL
      )`);

    await queryRunner.query(`
      CREATE TABLE deliveries (
        id uuid PRIMARY KEY,
        content_id uuid NOT NULL REFERENCES contents (id),
        status text NOT NULL CHECK (status IN ('issued', 'sent', 'confirmed', 'failed', 'expired')),
        client_fingerprint char(64) NULL,
        client_key bytea NULL,
        requester_ip text NOT NULL,
        confirm_key bytea NOT NULL,
        key_id text NOT NULL,
        issued_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        sent_at timestamptz NULL,
        confirmed_at timestamptz NULL,
        failed_at timestamptz NULL,
        bytes_sent bigint NOT NULL DEFAULT 0,
        confirmed_from text NULL,
        receipt bytea NULL
      )`);
    await queryRunner.query(`CREATE INDEX deliveries_status_idx ON deliveries (status)`);
    await queryRunner.query(`CREATE INDEX deliveries_content_id_idx ON deliveries (content_id)`);
    await queryRunner.query(`CREATE INDEX deliveries_client_fingerprint_idx ON deliveries (client_fingerprint)`);
    await queryRunner.query(`CREATE INDEX deliveries_issued_at_idx ON deliveries (issued_at)`);

    await queryRunner.query(`
      CREATE TABLE delivery_events (
        id bigserial PRIMARY KEY,
        delivery_id uuid NULL REFERENCES deliveries (id),
        type text NOT NULL,
        reason text NULL,
        remote_address text NULL,
        at timestamptz NOT NULL DEFAULT now(),
        detail jsonb NULL
      )`);
    await queryRunner.query(`CREATE INDEX delivery_events_delivery_id_id_idx ON delivery_events (delivery_id, id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE delivery_events`);
    await queryRunner.query(`DROP TABLE deliveries`);
    await queryRunner.query(`DROP TABLE contents`);
    // pgcrypto stays: other schemas in the database may use it.
  }
}
