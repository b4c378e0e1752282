import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 4: every delivery is inserted, then updated to sent and confirmed (status changes, so no update
 * is HOT and each one writes every index of the table again). Two indexes are exact prefixes of
 * composite ones made later and serve no query those do not: (content_id) of (content_id, status), and
 * (issued_at) of (issued_at, id). Dropping them saves two index entries per write of a delivery.
 */
export class DropRedundantDeliveryIndexes1795600000000 implements MigrationInterface {
  name = 'DropRedundantDeliveryIndexes1795600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX deliveries_content_id_idx`);
    await queryRunner.query(`DROP INDEX deliveries_issued_at_idx`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE INDEX deliveries_issued_at_idx ON deliveries (issued_at)`);
    await queryRunner.query(`CREATE INDEX deliveries_content_id_idx ON deliveries (content_id)`);
  }
}
