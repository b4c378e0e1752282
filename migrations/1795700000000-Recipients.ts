import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 15, who: recipients (people) and their enrolled installations (X25519 keys), one-time enrolment
 * codes (stored hashed), groups (static members and label selectors), the nonces of signed requests
 * (replay refusal) and the recipients' own audit trail.
 */
export class Recipients1795700000000 implements MigrationInterface {
  name = 'Recipients1795700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE recipients (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL,
        email text NULL,
        labels text[] NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    // Label selectors of groups: labels @> ARRAY[...].
    await queryRunner.query(`CREATE INDEX recipients_labels_idx ON recipients USING gin (labels)`);

    await queryRunner.query(`
      CREATE TABLE recipient_installations (
        fingerprint char(64) PRIMARY KEY,
        recipient_id uuid NOT NULL REFERENCES recipients (id),
        public_key bytea NOT NULL,
        enrolled_at timestamptz NOT NULL DEFAULT now(),
        enrolled_from text NULL,
        last_seen_at timestamptz NULL,
        revoked_at timestamptz NULL
      )`);
    await queryRunner.query(`CREATE INDEX recipient_installations_recipient_id_idx ON recipient_installations (recipient_id)`);

    await queryRunner.query(`
      CREATE TABLE enrolment_codes (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        code_hash char(64) NOT NULL UNIQUE,
        recipient_id uuid NULL REFERENCES recipients (id),
        name text NULL,
        email text NULL,
        labels text[] NOT NULL DEFAULT '{}',
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        used_at timestamptz NULL,
        used_by char(64) NULL
      )`);

    await queryRunner.query(`
      CREATE TABLE recipient_events (
        id bigserial PRIMARY KEY,
        recipient_id uuid NULL REFERENCES recipients (id),
        fingerprint char(64) NULL,
        type text NOT NULL,
        reason text NULL,
        remote_address text NULL,
        at timestamptz NOT NULL DEFAULT now(),
        detail jsonb NULL
      )`);
    await queryRunner.query(`CREATE INDEX recipient_events_recipient_id_idx ON recipient_events (recipient_id, id)`);

    await queryRunner.query(`
      CREATE TABLE request_nonces (
        nonce bytea PRIMARY KEY,
        seen_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`CREATE INDEX request_nonces_seen_at_idx ON request_nonces (seen_at)`);

    await queryRunner.query(`
      CREATE TABLE recipient_groups (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL UNIQUE,
        selector_labels text[] NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`
      CREATE TABLE recipient_group_members (
        group_id uuid NOT NULL REFERENCES recipient_groups (id) ON DELETE CASCADE,
        recipient_id uuid NOT NULL REFERENCES recipients (id),
        PRIMARY KEY (group_id, recipient_id)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE recipient_group_members`);
    await queryRunner.query(`DROP TABLE recipient_groups`);
    await queryRunner.query(`DROP TABLE request_nonces`);
    await queryRunner.query(`DROP TABLE recipient_events`);
    await queryRunner.query(`DROP TABLE enrolment_codes`);
    await queryRunner.query(`DROP TABLE recipient_installations`);
    await queryRunner.query(`DROP TABLE recipients`);
  }
}
