import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DataSource, MigrationInterface } from 'typeorm';
import { createTestDatabase } from './support/database.js';
import { ROOT } from './support/server-process.js';

type MigrationClass = new () => MigrationInterface;

/** Every migration of migrations/, in file order (their names begin with their timestamps). */
async function allMigrations(): Promise<MigrationClass[]> {
  const files = (await readdir(join(ROOT, 'migrations'))).filter((f) => /^\d+-.+\.ts$/.test(f)).sort();
  const classes: MigrationClass[] = [];
  for (const file of files) {
    const exported = Object.values((await import(join(ROOT, 'migrations', file))) as Record<string, unknown>);
    const migration = exported.find((value): value is MigrationClass => typeof value === 'function');
    if (!migration) throw new Error(`migrations/${file} exports no migration class`);
    classes.push(migration);
  }
  return classes;
}

/**
 * What the schema is, apart from TypeORM's own table: every column, index, constraint, trigger and
 * function of the public schema, as PostgreSQL describes them.
 */
async function schemaOf(db: DataSource): Promise<string[]> {
  const rows = await db.query<{ item: string }[]>(`
    SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') AS item
      FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'typeorm_migrations'
    UNION ALL
    SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'typeorm_migrations'
    UNION ALL
    SELECT 'constraint ' || c.conrelid::regclass || ' ' || c.conname || ' ' || pg_get_constraintdef(c.oid)
      FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
     WHERE n.nspname = 'public' AND c.conrelid <> 'typeorm_migrations'::regclass
    UNION ALL
    SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT 'function ' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    ORDER BY 1`);
  return rows.map((row) => row.item);
}

describe('migrations (postgres)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = new DataSource({
      type: 'postgres',
      url: database.url,
      migrations: await allMigrations(),
      migrationsTableName: 'typeorm_migrations',
      logging: ['error'],
    });
    await db.initialize();
  });

  afterAll(async () => {
    await db?.destroy();
    await database?.drop();
  });

  test('every migration goes up, down to an empty schema, and up again to the same schema', async () => {
    const count = (await allMigrations()).length;
    expect((await db.runMigrations({ transaction: 'each' })).length).toBe(count);
    const migrated = await schemaOf(db);
    expect(migrated.some((item) => item.startsWith('column deliveries.id '))).toBe(true);
    expect(migrated.filter((item) => item.startsWith('index ')).length).toBeGreaterThan(20);

    for (let left = count; left > 0; left--) {
      await db.undoLastMigration({ transaction: 'each' });
      expect(await db.query(`SELECT count(*)::int AS n FROM typeorm_migrations`)).toEqual([{ n: left - 1 }]);
    }
    expect(await schemaOf(db)).toEqual([]);

    expect((await db.runMigrations({ transaction: 'each' })).length).toBe(count);
    expect(await schemaOf(db)).toEqual(migrated);
  }, 120_000);
});
