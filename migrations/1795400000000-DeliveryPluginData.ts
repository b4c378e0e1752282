import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Keeps each delivery's sealed plug-in data, so its bundle can be produced again byte for byte:
 * Range requests and resumed downloads of one delivery get the same bytes and issue nothing new.
 */
export class DeliveryPluginData1795400000000 implements MigrationInterface {
  name = 'DeliveryPluginData1795400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE deliveries ADD COLUMN plugin_data bytea NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE deliveries DROP COLUMN plugin_data`);
  }
}
