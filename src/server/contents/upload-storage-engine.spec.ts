import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { crc32 } from 'node:zlib';
import { loadAppConfig } from '../config/app-config.js';
import type { UploadedFileInfo } from '../http/uploads.js';
import { ContentStorage, READ_HIGH_WATER_MARK } from './content-storage.js';
import { ContentUploadEngine } from './upload-storage-engine.js';

describe('ContentUploadEngine and ContentStorage on a real directory', () => {
  let dir: string;
  let storage: ContentStorage;
  let engine: ContentUploadEngine;
  let original: Buffer;
  let source: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcx-storage-'));
    storage = new ContentStorage(loadAppConfig({ DATA_DIR: join(dir, 'data') }));
    await storage.onModuleInit();
    engine = new ContentUploadEngine(storage);
    original = randomBytes(3 * 1024 * 1024 + 4321);
    source = join(dir, 'source.bin');
    await writeFile(source, original);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('streams a multi-chunk file to a temp file with the SHA-256 and CRC-32 node computes over the whole', async () => {
    let chunks = 0;
    const stream = createReadStream(source, { highWaterMark: 64 * 1024 }).on('data', () => chunks++);
    const upload = await engine.store({ stream });
    expect(chunks).toBeGreaterThan(40);
    expect(upload.size).toBe(original.length);
    expect(upload.sha256).toBe(createHash('sha256').update(original).digest('hex'));
    expect(upload.crc32).toBe(crc32(original));
    expect(upload.path.startsWith(storage.tmpDir)).toBe(true);
    expect((await readFile(upload.path)).equals(original)).toBe(true); // toEqual on MiB buffers takes seconds
    expect((await stat(upload.path)).mode & 0o777).toBe(0o600);

    const key = await storage.commit(upload.path, upload.sha256);
    expect(key).toBe(`${upload.sha256.slice(0, 2)}/${upload.sha256}`);
    expect(storage.pathOf(key)).toBe(join(dir, 'data', 'contents', key));
    expect(await readdir(storage.tmpDir)).toEqual([]);

    const read: Buffer[] = [];
    const reader = storage.openRead(key);
    expect(reader.readableHighWaterMark).toBe(READ_HIGH_WATER_MARK);
    for await (const chunk of reader) read.push(chunk as Buffer);
    expect(Buffer.concat(read).equals(original)).toBe(true);
  });

  test('the same bytes again are deduplicated: the temp file is dropped, the stored file kept', async () => {
    const upload = await engine.store({ stream: createReadStream(source) });
    const key = await storage.commit(upload.path, upload.sha256);
    expect(await readdir(storage.tmpDir)).toEqual([]);
    expect((await readFile(storage.pathOf(key))).equals(original)).toBe(true);
    await storage.remove(key);
    expect(await storage.exists(key)).toBe(false);
    await storage.remove(key); // a missing file is fine
  });

  test('an empty file hashes like node hashes nothing', async () => {
    const stream = new PassThrough();
    stream.end();
    const upload = await engine.store({ stream });
    expect(upload).toMatchObject({ size: 0, sha256: createHash('sha256').digest('hex'), crc32: 0 });
    await storage.removeTemp(upload.path);
  });

  test('a stream cut short by the size limit leaves no temp file', async () => {
    const stream = new PassThrough() as PassThrough & { truncated?: boolean };
    const stored = engine.store({ stream });
    stream.write(randomBytes(1000));
    stream.emit('limit');
    stream.truncated = true;
    stream.end();
    await expect(stored).rejects.toThrow(/size limit/);
    expect(await readdir(storage.tmpDir)).toEqual([]);
  });

  test('a failing source leaves no temp file', async () => {
    const stream = new PassThrough();
    const stored = engine.store({ stream });
    stream.write(randomBytes(1000));
    stream.destroy(new Error('client went away'));
    await expect(stored).rejects.toThrow('client went away');
    expect(await readdir(storage.tmpDir)).toEqual([]);
  });

  test('storage-engine removal callback removes the temp file and tolerates a committed one', async () => {
    const upload = await engine.store({ stream: createReadStream(source) });
    await new Promise<void>((done, fail) =>
      engine._removeFile({}, { path: upload.path } as UploadedFileInfo, (error) => (error ? fail(error) : done())),
    );
    expect(await readdir(storage.tmpDir)).toEqual([]);
    await new Promise<void>((done, fail) =>
      engine._removeFile({}, { path: upload.path } as UploadedFileInfo, (error) => (error ? fail(error) : done())),
    );
  });

  test('keys and temp paths become paths only inside their directories', async () => {
    expect(() => storage.pathOf('../../etc/passwd')).toThrow(/not a storage key/);
    expect(() => storage.pathOf(`ab/${'a'.repeat(63)}/`)).toThrow(/not a storage key/);
    expect(() => storage.pathOf(`ab/${'A'.repeat(64)}`)).toThrow(/not a storage key/);
    await expect(storage.removeTemp(source)).rejects.toThrow(/escapes/);
    await expect(storage.removeTemp(storage.tmpDir)).rejects.toThrow(/escapes/);
    await expect(storage.commit(source, 'a'.repeat(64))).rejects.toThrow(/escapes/);
    expect(() => ContentStorage.storageKeyFor('xyz')).toThrow(/SHA-256/);
  });
});
