import { DataSource } from 'typeorm';
import { Recipients1795700000000 } from '../../../migrations/1795700000000-Recipients.js';
import { createTestDatabase } from '../../../test/support/database.js';
import { NONCE_RETENTION_MS } from './nonce-pruner.js';
import { RequestAuthRepository } from './request-auth.repository.js';

/** The nonce statement and the pruning on a real PostgreSQL with the Recipients migration. */
describe('RequestAuthRepository (PostgreSQL)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let dataSource: DataSource;
  let repository: RequestAuthRepository;

  beforeAll(async () => {
    database = await createTestDatabase();
    dataSource = new DataSource({ type: 'postgres', url: database.url, migrations: [Recipients1795700000000], logging: false });
    await dataSource.initialize();
    await dataSource.runMigrations();
    repository = new RequestAuthRepository(dataSource);
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  test('a nonce is fresh once; the installation is read with it', async () => {
    const [recipient] = await dataSource.query<{ id: string }[]>(`INSERT INTO recipients (name) VALUES ('A') RETURNING id`);
    const fingerprint = 'a'.repeat(64);
    await dataSource.query(`INSERT INTO recipient_installations (fingerprint, recipient_id, public_key) VALUES ($1, $2, '\\x00')`, [
      fingerprint,
      recipient.id,
    ]);
    const nonce = Buffer.alloc(16, 1);
    expect(await repository.takeNonce(nonce, fingerprint)).toEqual({ fresh: true, recipientId: recipient.id, revokedAt: null });
    expect(await repository.takeNonce(nonce, fingerprint)).toMatchObject({ fresh: false });
    expect(await repository.takeNonce(Buffer.alloc(16, 2), 'b'.repeat(64))).toEqual({ fresh: true, recipientId: null, revokedAt: null });
    const [seen] = await dataSource.query<{ last_seen_at: Date | null }[]>(`SELECT last_seen_at FROM recipient_installations`);
    expect(seen.last_seen_at).toBeInstanceOf(Date);
  });

  test('pruning deletes only nonces older than the retention (twice the allowed skew)', async () => {
    await dataSource.query(`DELETE FROM request_nonces`);
    await dataSource.query(
      `INSERT INTO request_nonces (nonce, seen_at) VALUES ('\\x01', now() - make_interval(secs => $1 / 1000.0 + 5)),
                                                         ('\\x02', now() - make_interval(secs => $1 / 1000.0 - 5)), ('\\x03', now())`,
      [NONCE_RETENTION_MS],
    );
    expect(await repository.pruneNonces(NONCE_RETENTION_MS)).toBe(1);
    const left = await dataSource.query<{ nonce: Buffer }[]>(`SELECT nonce FROM request_nonces ORDER BY nonce`);
    expect(left.map((row) => row.nonce.toString('hex'))).toEqual(['02', '03']);
  });
});
