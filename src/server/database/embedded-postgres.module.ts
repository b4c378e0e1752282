import { Module } from '@nestjs/common';
import { EmbeddedPostgres } from './embedded-postgres.js';

/** Imported by TypeORM's async module so that its options factory can start the embedded database. */
@Module({
  providers: [EmbeddedPostgres],
  exports: [EmbeddedPostgres],
})
export class EmbeddedPostgresModule {}
