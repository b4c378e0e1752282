import { mkdir } from 'node:fs/promises';
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { PGlite } from '@electric-sql/pglite';
import { pgcrypto } from '@electric-sql/pglite/contrib/pgcrypto';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { AppConfig } from '../config/app-config.js';
import { DataDirLock } from './data-dir-lock.js';

export interface PostgresEndpoint {
  host: string;
  port: number;
}

/**
 * The embedded PostgreSQL used when DATABASE_URL is unset: PGlite on DATA_DIR/pgdata, served on
 * 127.0.0.1 (ephemeral port) by pglite-socket so that TypeORM uses its normal `postgres` driver.
 * Holds DATA_DIR/pgdata.lock while running: PGlite has no lock of its own.
 */
@Injectable()
export class EmbeddedPostgres implements OnApplicationShutdown {
  private readonly logger = new Logger(EmbeddedPostgres.name);
  private readonly lock: DataDirLock;
  private db: PGlite | undefined;
  private server: PGLiteSocketServer | undefined;
  private starting: Promise<PostgresEndpoint> | undefined;

  constructor(private readonly config: AppConfig) {
    this.lock = new DataDirLock(config.pgLockFile, config.dataDir);
  }

  /** Starts once (later calls get the same endpoint). */
  start(): Promise<PostgresEndpoint> {
    this.starting ??= this.doStart().catch(async (error: unknown) => {
      this.starting = undefined;
      await this.stop();
      throw error;
    });
    return this.starting;
  }

  private async doStart(): Promise<PostgresEndpoint> {
    await mkdir(this.config.dataDir, { recursive: true, mode: 0o700 });
    this.lock.acquire();
    this.db = await PGlite.create({ dataDir: this.config.pgDataDir, extensions: { pgcrypto } });
    this.server = new PGLiteSocketServer({
      db: this.db,
      host: '127.0.0.1',
      port: 0,
      // Room for the TypeORM pool plus a migration runner; the default of 1 breaks pools.
      maxConnections: this.config.dbPoolSize + 4,
    });
    await this.server.start();
    const conn = this.server.getServerConn();
    const port = Number(conn.slice(conn.lastIndexOf(':') + 1));
    this.logger.log(`embedded PostgreSQL (PGlite) at ${this.config.pgDataDir}, serving 127.0.0.1:${port}`);
    return { host: '127.0.0.1', port };
  }

  /** Stops the socket server, closes PGlite (a clean checkpoint) and releases the lock. */
  async stop(): Promise<void> {
    const server = this.server;
    const db = this.db;
    this.server = undefined;
    this.db = undefined;
    this.starting = undefined;
    try {
      if (server) await server.stop();
    } finally {
      try {
        if (db && !db.closed) await db.close();
      } finally {
        this.lock.release();
      }
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.stop();
  }
}
