import type { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { PostgresDataSourceOptions } from 'typeorm/driver/postgres/PostgresDataSourceOptions.js';
import { AppConfig } from '../config/app-config.js';
import type { PostgresEndpoint } from './embedded-postgres.js';

/** dist/migrations/*.js, found relative to this compiled file (dist/src/server/database). */
export const MIGRATIONS_GLOB = fileURLToPath(new URL('../../../migrations/*.js', import.meta.url));

/** Every compiled entity, for the TypeORM CLI (the Nest app uses autoLoadEntities instead). */
export const ENTITIES_GLOB = fileURLToPath(new URL('../**/*.entity.js', import.meta.url));

/**
 * The one place that builds TypeORM's options, for the Nest app and for the TypeORM CLI.
 * `embedded` is the endpoint of the running EmbeddedPostgres when DATABASE_URL is unset.
 */
export function buildDataSourceOptions(config: AppConfig, embedded?: PostgresEndpoint): PostgresDataSourceOptions {
  const connection =
    config.databaseUrl !== undefined
      ? { url: config.databaseUrl }
      : embedded !== undefined
        ? { host: embedded.host, port: embedded.port, username: 'postgres', password: 'postgres', database: 'postgres' }
        : undefined;
  if (connection === undefined) throw new Error('DATABASE_URL is unset and the embedded database is not running');
  return {
    type: 'postgres',
    ...connection,
    applicationName: 'dcx',
    // pglite-socket queues the protocol messages of all its connections one by one onto one session,
    // so two connections' Parse/Bind/Execute can interleave (a query then runs with another's
    // parameters, or "unnamed prepared statement does not exist"). One connection avoids that; PGlite
    // runs one statement at a time anyway.
    poolSize: config.databaseUrl === undefined ? 1 : config.dbPoolSize,
    uuidExtension: 'pgcrypto',
    synchronize: false,
    migrations: [MIGRATIONS_GLOB],
    migrationsRun: true,
    migrationsTableName: 'typeorm_migrations',
    logging: ['error', 'warn', 'migration'],
    // pg-pool listens for a connection's errors only while it is idle, and TypeORM's query runner stops
    // listening once the first error released it: a second 'error' of that connection (PostgreSQL's
    // FATAL message, then the closed socket, as pg_terminate_backend or a failover sends them) had no
    // listener and killed the process. This listener stays for the connection's life; the query that
    // failed still gets its error, and the pool still drops the connection.
    extra: { onConnect: (client: EventEmitter) => void client.on('error', () => undefined) },
  };
}
