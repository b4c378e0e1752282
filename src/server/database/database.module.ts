import { Global, Module } from '@nestjs/common';
import { TypeOrmModule, TypeOrmModuleOptions } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config.js';
import { buildDataSourceOptions } from './database-options.js';
import { EmbeddedPostgres } from './embedded-postgres.js';
import { EmbeddedPostgresModule } from './embedded-postgres.module.js';
import { PreparedStatements } from './prepared-statements.js';

const RETRYABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', '57P03']);

/**
 * TypeORM on PostgreSQL: DATABASE_URL when set, else the embedded PGlite database.
 * Migrations run at start; entities come from TypeOrmModule.forFeature (autoLoadEntities).
 * Global, as TypeORM's DataSource is: the hot paths of several features run PreparedStatements.
 */
@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      imports: [EmbeddedPostgresModule],
      inject: [AppConfig, EmbeddedPostgres],
      useFactory: async (config: AppConfig, embedded: EmbeddedPostgres): Promise<TypeOrmModuleOptions> => {
        const external = config.databaseUrl !== undefined;
        return {
          ...buildDataSourceOptions(config, external ? undefined : await embedded.start()),
          autoLoadEntities: true,
          retryAttempts: external ? 5 : 1,
          retryDelay: 2000,
          toRetry: (error: unknown) => RETRYABLE.has(String((error as { code?: unknown })?.code)),
        };
      },
    }),
  ],
  providers: [PreparedStatements],
  exports: [PreparedStatements],
})
export class DatabaseModule {}
