import { DataSource, QueryFailedError, QueryRunner } from 'typeorm';
import { createTestDatabase } from '../../../test/support/database.js';
import { loadAppConfig } from '../config/app-config.js';
import { buildDataSourceOptions } from './database-options.js';
import { PreparedStatement, PreparedStatements } from './prepared-statements.js';

const PLUS_ONE = new PreparedStatement('dcx_spec_plus_one', 'SELECT $1::int + 1 AS n');
const DIVIDE = new PreparedStatement('dcx_spec_divide', 'SELECT 12 / $1::int AS n');
const TIMES_TWO = new PreparedStatement('dcx_spec_times_two', 'SELECT $1::int * 2 AS n');

/** PreparedStatements on a real PostgreSQL database (prepared statements belong to a connection: each test looks at its runner's). */
describe('PreparedStatements (PostgreSQL)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let dataSource: DataSource;
  let runner: QueryRunner;

  const statementsWith = (env: Record<string, string>) =>
    new PreparedStatements(dataSource, loadAppConfig({ DATA_DIR: '/tmp', ...env }, '/'));
  const prepared = async (statement: PreparedStatement) =>
    (await runner.query('SELECT name, statement FROM pg_prepared_statements WHERE name = $1', [statement.name])) as {
      name: string;
      statement: string;
    }[];

  beforeAll(async () => {
    database = await createTestDatabase();
    dataSource = new DataSource({
      ...buildDataSourceOptions(loadAppConfig({ DATABASE_URL: database.url }, '/')),
      migrations: [],
      migrationsRun: false,
      logging: false,
    });
    await dataSource.initialize();
  });
  afterAll(async () => {
    await dataSource.destroy();
    await database.drop();
  });
  beforeEach(() => {
    runner = dataSource.createQueryRunner();
  });
  afterEach(async () => {
    await runner.release();
  });

  test('against PostgreSQL a statement is prepared once per connection, then run with any parameters', async () => {
    const statements = statementsWith({ DATABASE_URL: database.url });
    expect(await statements.query(PLUS_ONE, [1], runner)).toEqual([{ n: 2 }]);
    expect(await statements.query(PLUS_ONE, [41], runner)).toEqual([{ n: 42 }]);
    expect(await prepared(PLUS_ONE)).toEqual([{ name: PLUS_ONE.name, statement: PLUS_ONE.text }]);
  });

  test('a failed run is a QueryFailedError naming the SQL, and the statement still runs afterwards', async () => {
    const statements = statementsWith({ DATABASE_URL: database.url });
    const failure = await statements.query(DIVIDE, [0], runner).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(QueryFailedError);
    expect((failure as QueryFailedError).message).toBe('division by zero');
    expect(String((failure as QueryFailedError).query)).toBe(DIVIDE.text);
    expect(await statements.query(DIVIDE, [4], runner)).toEqual([{ n: 3 }]);
  });

  test('on a pooled connection when no runner is given', async () => {
    expect(await statementsWith({ DATABASE_URL: database.url }).query(PLUS_ONE, [9])).toEqual([{ n: 10 }]);
  });

  test('with DB_PREPARED_STATEMENTS=false, and when the configuration names no DATABASE_URL (the embedded database), statements run unnamed', async () => {
    for (const env of [{ DATABASE_URL: database.url, DB_PREPARED_STATEMENTS: 'false' }, {}] as Record<string, string>[]) {
      expect(await statementsWith(env).query(TIMES_TWO, [21], runner)).toEqual([{ n: 42 }]);
    }
    expect(await prepared(TIMES_TWO)).toEqual([]);
  });
});
