import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ForbiddenException, NotFoundException, UnauthorizedException, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import { Initial1795390000000 } from '../../../migrations/1795390000000-Initial.js';
import { DeliveryPluginData1795400000000 } from '../../../migrations/1795400000000-DeliveryPluginData.js';
import { ExpiryReissueWebhooks1795500000000 } from '../../../migrations/1795500000000-ExpiryReissueWebhooks.js';
import { DropRedundantDeliveryIndexes1795600000000 } from '../../../migrations/1795600000000-DropRedundantDeliveryIndexes.js';
import { AppModule } from '../app.module.js';
import { configureApp, DcxHttp } from '../app.setup.js';
import { createRootLogger } from '../observability/logging.js';
import { loadAppConfig } from '../config/app-config.js';
import { buildDataSourceOptions } from '../database/database-options.js';
import { EmbeddedPostgres } from '../database/embedded-postgres.js';
import { ContentStorage } from './content-storage.js';
import { CONTENT_CACHE_TTL_MS, ContentsService } from './contents.service.js';

const ADMIN = 'an-admin-token-for-the-api-spec';

/** The real AppModule on the embedded database, over HTTP. */
describe('contents API (embedded PostgreSQL)', () => {
  let dir: string;
  let app: INestApplication;
  let base: string;
  const saved = { ...process.env };

  const api = (path: string, init: RequestInit = {}, token: string | null = ADMIN) =>
    fetch(`${base}${path}`, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) } });

  const upload = (bytes: Buffer, name: string, fields: Record<string, string> = {}, type = 'application/octet-stream') => {
    const form = new FormData();
    for (const [key, value] of Object.entries(fields)) form.append(key, value);
    form.append('file', new Blob([bytes], { type }), name);
    return api('/api/contents', { method: 'POST', body: form });
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcx-api-'));
    Object.assign(process.env, {
      DATA_DIR: dir,
      ADMIN_TOKEN: ADMIN,
      LOG_LEVEL: 'error',
      PUBLIC_URL: 'https://dcx.example',
      MAX_UPLOAD_BYTES: String(4 * 1024 * 1024),
    });
    delete process.env.DATABASE_URL;
    // Run from source, the app's migrations glob (dist/migrations/*.js) has nothing to load: migrate first.
    const config = loadAppConfig(process.env);
    const embedded = new EmbeddedPostgres(config);
    const migrator = new DataSource({
      ...buildDataSourceOptions(config, await embedded.start()),
      migrations: [
        Initial1795390000000,
        DeliveryPluginData1795400000000,
        ExpiryReissueWebhooks1795500000000,
        DropRedundantDeliveryIndexes1795600000000,
      ],
      logging: false,
    });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    await embedded.stop();

    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const http = new DcxHttp(createRootLogger());
    app = moduleRef.createNestApplication(http.adapter, { logger: ['error', 'warn'], bodyParser: false });
    configureApp(app, http);
    await app.listen(0, '127.0.0.1');
    base = await app.getUrl();
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    process.env = saved;
    expect(existsSync(join(dir, 'pgdata.lock'))).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });

  test('upload, list, get, deliverable checks, delete', async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 3);
    const sha256 = createHash('sha256').update(bytes).digest('hex');

    expect((await api('/api/contents', {}, null)).status).toBe(401);

    const created = await upload(bytes, '..\\dir\\Mo\u202Evie.mp4', { access: 'token' }, 'video/mp4');
    expect(created.status).toBe(201);
    const body = (await created.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ name: 'Movie.mp4', mediaType: 'video/mp4', size: bytes.length, sha256, access: 'token' });
    expect(body.bundleUrl).toBe(`https://dcx.example/api/contents/${body.id as string}/bundle`);
    expect(body.accessToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const id = body.id as string;

    const listed = (await (await api('/api/contents')).json()) as Record<string, unknown>[];
    expect(listed.map((c) => c.id)).toContain(id);
    expect(listed.every((c) => c.accessToken === undefined)).toBe(true);

    const fetched = (await (await api(`/api/contents/${id}`)).json()) as Record<string, unknown>;
    expect(fetched).toEqual({ ...body, accessToken: undefined, createdAt: body.createdAt });
    expect((await api('/api/contents/not-a-uuid')).status).toBe(400);
    expect((await api(`/api/contents/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`)).status).toBe(404);

    const contents = app.get(ContentsService);
    await expect(contents.findDeliverable(id, undefined)).rejects.toBeInstanceOf(UnauthorizedException);
    await expect(contents.findDeliverable(id, 'wrong')).rejects.toBeInstanceOf(ForbiddenException);
    const deliverable = await contents.findDeliverable(id, body.accessToken as string);
    expect(deliverable).toMatchObject({ id, size: bytes.length, sha256 });
    const storage = app.get(ContentStorage);
    expect(existsSync(storage.pathOf(deliverable.storageKey))).toBe(true);
    await expect(contents.findDeliverable('nope', undefined)).rejects.toBeInstanceOf(NotFoundException);

    // A second, public upload of the same bytes shares the stored file.
    const twin = (await (await upload(bytes, 'copy.bin')).json()) as Record<string, unknown>;
    expect(twin.accessToken).toBeUndefined();
    expect((await contents.findDeliverable(twin.id as string, undefined)).storageKey).toBe(deliverable.storageKey);

    expect((await api(`/api/contents/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(`/api/contents/${id}`)).status).toBe(404);
    await expect(contents.findDeliverable(id, body.accessToken as string)).rejects.toBeInstanceOf(NotFoundException);
    expect(existsSync(storage.pathOf(deliverable.storageKey))).toBe(true);
    expect((await api(`/api/contents/${twin.id as string}`, { method: 'DELETE' })).status).toBe(204);
    expect(existsSync(storage.pathOf(deliverable.storageKey))).toBe(false);
    expect(await readdir(storage.tmpDir)).toEqual([]);
  }, 60_000);

  const deletedElsewhere =
    'a content deleted by another replica: its bundle is 404 at once (not 500 for the file it removed), ' +
    'and it is not deliverable once CONTENT_CACHE_TTL_MS has passed';
  test(
    deletedElsewhere,
    async () => {
      const { id } = (await (await upload(randomBytes(100), 'elsewhere.bin')).json()) as { id: string };
      const contents = app.get(ContentsService);
      const { storageKey } = await contents.findDeliverable(id, undefined); // now kept here
      // What the other replica's DELETE does: the row soft-deleted, the stored file removed.
      await app.get(DataSource).query('UPDATE contents SET deleted_at = now() WHERE id = $1', [id]);
      await rm(app.get(ContentStorage).pathOf(storageKey));
      expect((await api(`/api/contents/${id}/bundle`, {}, null)).status).toBe(404);
      await new Promise((resolve) => setTimeout(resolve, CONTENT_CACHE_TTL_MS + 100));
      await expect(contents.findDeliverable(id, undefined)).rejects.toBeInstanceOf(NotFoundException);
    },
    30_000,
  );

  test('refusals leave no temp file: too large (413), bad access (400), unknown field (400), no file (400)', async () => {
    expect((await upload(randomBytes(4 * 1024 * 1024 + 1), 'big.bin')).status).toBe(413);
    expect((await upload(randomBytes(10), 'a.bin', { access: 'secret' })).status).toBe(400);
    expect((await upload(randomBytes(10), 'a.bin', { other: '1' })).status).toBe(400);
    const form = new FormData();
    form.append('access', 'public');
    expect((await api('/api/contents', { method: 'POST', body: form })).status).toBe(400);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
  }, 60_000);
});
