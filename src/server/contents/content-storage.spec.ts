import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppConfig } from '../config/app-config.js';
import { ContentStorage, SMALL_FILE_MAX } from './content-storage.js';

describe('ContentStorage: small stored files kept in memory', () => {
  let dir: string;
  let storage: ContentStorage;

  const store = async (bytes: Buffer): Promise<string> => {
    const temp = join(storage.tmpDir, `upload-${randomBytes(16).toString('hex')}`);
    await writeFile(temp, bytes);
    return storage.commit(temp, createHash('sha256').update(bytes).digest('hex'));
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcx-storage-'));
    storage = new ContentStorage({ contentsDir: join(dir, 'contents'), tmpDir: join(dir, 'tmp') } as AppConfig);
    await storage.ensureDirectories();
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('read once from disk, then from memory, even when the disk copy is gone', async () => {
    const bytes = randomBytes(10 * 1024);
    const key = await store(bytes);
    expect(storage.holds(key)).toBe(false);
    expect((await storage.readSmall(key, bytes.length)).equals(bytes)).toBe(true);
    expect(storage.holds(key)).toBe(true);
    await unlink(storage.pathOf(key)); // lost behind the server's back: the kept copy is still the content
    expect((await storage.readSmall(key, bytes.length)).equals(bytes)).toBe(true);
  });

  test('concurrent first reads share one read and get the same bytes', async () => {
    const bytes = randomBytes(SMALL_FILE_MAX);
    const key = await store(bytes);
    const reads = await Promise.all(Array.from({ length: 20 }, () => storage.readSmall(key, bytes.length)));
    for (const read of reads) expect(read).toBe(reads[0]);
    expect(reads[0].equals(bytes)).toBe(true);
  });

  test('removing a content forgets its copy; a size that does not match, or a large file, is an error', async () => {
    const bytes = randomBytes(100);
    const key = await store(bytes);
    await expect(storage.readSmall(key, 99)).rejects.toThrow(/has 100 bytes, not 99/);
    expect(storage.holds(key)).toBe(false);
    await storage.readSmall(key, 100);
    await storage.remove(key);
    expect(storage.holds(key)).toBe(false);
    await expect(storage.readSmall(key, 100)).rejects.toThrow(/ENOENT/);
    await expect(storage.readSmall(key, SMALL_FILE_MAX + 1)).rejects.toThrow(/not a small file/);
  });
});
