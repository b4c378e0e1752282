import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { AppConfig } from '../config/app-config.js';

/**
 * A statement that a hot path runs many times a second with different parameters (issuing bundles,
 * deciding confirmations). `name` is its prepared-statement name: unique, fixed. PostgreSQL may come to
 * run it with one plan for any parameters, made from the tables as they were then: not for a statement
 * whose best plan changes as a table grows (see MARK_SENT_SQL in delivery.repository.ts).
 */
export class PreparedStatement {
  constructor(
    readonly name: string,
    readonly text: string,
  ) {}
}

/**
 * Runs PreparedStatements. Against PostgreSQL each pooled connection parses and plans a statement once
 * and then only binds and executes it, which saves PostgreSQL's CPU on the hot paths.
 * Run as plain statements instead when DB_PREPARED_STATEMENTS=false (a pooler that does not keep
 * prepared statements, such as PgBouncer before 1.21 in transaction mode) and on the embedded PGlite,
 * whose connections all share one session that outlives any one of them.
 */
@Injectable()
export class PreparedStatements {
  private readonly named: boolean;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    config: AppConfig,
  ) {
    this.named = config.databaseUrl !== undefined && config.dbPreparedStatements;
  }

  /** Runs `statement` on `on` (a query runner or a transaction's manager), or on a pooled connection; returns its rows. */
  query<Row>(
    statement: PreparedStatement,
    parameters: unknown[],
    on: QueryRunner | EntityManager = this.dataSource.manager,
  ): Promise<Row[]> {
    // TypeORM hands the query to pg's Client.query, which takes a query config (name, text) as well as
    // SQL text; TypeORM's own logging of a failed query turns it into text with String().
    const query = this.named ? { name: statement.name, text: statement.text, toString: () => statement.text } : statement.text;
    return on.query(query as unknown as string, parameters) as Promise<Row[]>;
  }
}
