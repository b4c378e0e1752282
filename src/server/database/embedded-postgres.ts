import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, OnApplicationShutdown, Optional } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { PGlite } from '@electric-sql/pglite';
import { pgcrypto } from '@electric-sql/pglite/contrib/pgcrypto';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { DataSource } from 'typeorm';
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

  constructor(
    private readonly config: AppConfig,
    @Optional() private readonly moduleRef?: ModuleRef,
  ) {
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
      if (server) {
        // pg clients close their sockets a moment after pool.end() resolves.
        for (let waited = 0; server.getStats().activeConnections > 0 && waited < 2000; waited += 50) await sleep(50);
        const open = server.getStats().activeConnections;
        if (open > 0) this.logger.warn(`stopping embedded PostgreSQL with ${open} connection(s) still open`);
      }
      if (server) await server.stop();
    } finally {
      try {
        if (db && !db.closed) await db.close();
      } finally {
        this.lock.release();
      }
    }
  }

  /**
   * TypeOrmCoreModule is global, so Nest would shut it down after this provider: close TypeORM's
   * pool here first (it then skips its own destroy). Use the database no later than
   * beforeApplicationShutdown.
   */
  async onApplicationShutdown(): Promise<void> {
    if (this.server === undefined && this.db === undefined) return;
    try {
      const dataSource = this.moduleRef?.get(DataSource, { strict: false });
      if (dataSource?.isInitialized) await dataSource.destroy();
    } catch (error) {
      this.logger.warn(`closing the TypeORM data source: ${(error as Error).message}`);
    }
    await this.stop();
    this.logger.log('embedded PostgreSQL stopped');
  }
}
