import { Module } from '@nestjs/common';
import { EmbeddedPostgres } from './embedded-postgres.js';

/**
 * Kept apart from DatabaseModule on purpose: imported by TypeORM's async module, it sits deeper in
 * the module graph, so Nest shuts it down after TypeORM has closed its pool.
 */
@Module({
  providers: [EmbeddedPostgres],
  exports: [EmbeddedPostgres],
})
export class EmbeddedPostgresModule {}
