/**
 * The DataSource for the TypeORM CLI (`npm run migration:run` / `migration:revert`):
 * the same options as the server; with no DATABASE_URL it starts the embedded database itself
 * (taking DATA_DIR/pgdata.lock, so the server must be stopped) and stops it on destroy().
 * Only the CLI imports this file.
 */
import { existsSync } from 'node:fs';
import { DataSource } from 'typeorm';
import { loadAppConfig } from '../config/app-config.js';
import { buildDataSourceOptions, ENTITIES_GLOB } from './database-options.js';
import { EmbeddedPostgres } from './embedded-postgres.js';

class CliDataSource extends DataSource {
  constructor(
    options: ConstructorParameters<typeof DataSource>[0],
    private readonly embedded: EmbeddedPostgres | undefined,
  ) {
    super(options);
  }

  override async destroy(): Promise<void> {
    try {
      if (this.isInitialized) await super.destroy();
    } finally {
      await this.embedded?.stop();
    }
  }
}

async function createCliDataSource(): Promise<DataSource> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadAppConfig(process.env);
  const embedded = config.databaseUrl === undefined ? new EmbeddedPostgres(config) : undefined;
  const endpoint = await embedded?.start();
  return new CliDataSource({ ...buildDataSourceOptions(config, endpoint), entities: [ENTITIES_GLOB] }, embedded);
}

export const dataSource = createCliDataSource();
