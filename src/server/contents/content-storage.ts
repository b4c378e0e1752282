import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, ReadStream, WriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { AppConfig } from '../config/app-config.js';

/** Reads go in 1 MiB chunks: 64 KiB (the default) halves streaming throughput. */
export const READ_HIGH_WATER_MARK = 1024 * 1024;

/** Stored files up to this size are kept whole in memory once read: a small bundle then reads no file. */
export const SMALL_FILE_MAX = 64 * 1024;
/** Memory for those copies at most (least recently used go first). */
const SMALL_FILE_CACHE_BYTES = 32 * 1024 * 1024;

const STORAGE_KEY = /^[0-9a-f]{2}\/[0-9a-f]{64}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const TEMP_NAME = /^upload-[0-9a-f]{32}$/;
const STALE_TEMP_MS = 24 * 3600 * 1000;

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}

/** `child` resolved under `root`, or an error when it would leave it. */
function contained(root: string, child: string): string {
  const full = resolve(root, child);
  const rel = relative(root, full);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new Error(`path escapes ${root}: ${child}`);
  return full;
}

export interface TempFile {
  path: string;
  stream: WriteStream;
}

/**
 * All file-system access for contents: temp files for uploads under DATA_DIR/tmp and
 * content-addressed files under DATA_DIR/contents/<sha[0..2]>/<sha> (the storage key is
 * `<sha[0..2]>/<sha>`). A key or temp path becomes a path only through a containment check.
 */
@Injectable()
export class ContentStorage implements OnModuleInit {
  private readonly logger = new Logger(ContentStorage.name);
  readonly root: string;
  readonly tmpDir: string;
  /**
   * Whole small stored files. A stored file never changes (its key is the SHA-256 of its bytes), so a
   * copy is never stale; concurrent first reads of one file share one read.
   */
  private readonly smallFiles = new LRUCache<string, Buffer>({
    maxSize: SMALL_FILE_CACHE_BYTES,
    sizeCalculation: (bytes) => Math.max(1, bytes.length),
    fetchMethod: (storageKey) => readFile(this.pathOf(storageKey)),
  });

  constructor(config: AppConfig) {
    this.root = config.contentsDir;
    this.tmpDir = config.tmpDir;
  }

  async onModuleInit(): Promise<void> {
    await this.ensureDirectories();
    await this.sweepStaleTemp();
  }

  async ensureDirectories(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  static storageKeyFor(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new Error(`not a SHA-256 hex digest: ${sha256}`);
    return `${sha256.slice(0, 2)}/${sha256}`;
  }

  /** The absolute path of a stored content. */
  pathOf(storageKey: string): string {
    if (!STORAGE_KEY.test(storageKey)) throw new Error(`not a storage key: ${JSON.stringify(storageKey)}`);
    return contained(this.root, storageKey);
  }

  /** A read stream of a stored content (1 MiB chunks); `start`/`end` are inclusive byte offsets. */
  openRead(storageKey: string, range?: { start?: number; end?: number }): ReadStream {
    return createReadStream(this.pathOf(storageKey), { highWaterMark: READ_HIGH_WATER_MARK, ...range });
  }

  /** A whole stored file of at most SMALL_FILE_MAX bytes, from memory after the first read. */
  async readSmall(storageKey: string, size: number): Promise<Buffer> {
    if (size > SMALL_FILE_MAX) throw new Error(`${size} bytes is not a small file (at most ${SMALL_FILE_MAX})`);
    const bytes = (await this.smallFiles.fetch(storageKey))!;
    if (bytes.length !== size) {
      this.smallFiles.delete(storageKey);
      throw new Error(`the stored file ${storageKey} has ${bytes.length} bytes, not ${size}`);
    }
    return bytes;
  }

  /** Whether a small stored file is held in memory: it can be sent whatever has become of the disk. */
  holds(storageKey: string): boolean {
    return this.smallFiles.has(storageKey);
  }

  async exists(storageKey: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(storageKey))).isFile();
    } catch (error) {
      ignoreMissing(error);
      return false;
    }
  }

  /** A new, exclusively created temp file (mode 0600) for an upload. */
  createTempFile(): TempFile {
    const path = join(this.tmpDir, `upload-${randomBytes(16).toString('hex')}`);
    return { path, stream: createWriteStream(path, { flags: 'wx', mode: 0o600 }) };
  }

  /** Removes a temp file; a missing one (already committed) is fine. Refuses paths outside DATA_DIR/tmp. */
  async removeTemp(path: string): Promise<void> {
    const full = contained(this.tmpDir, relative(this.tmpDir, resolve(path)));
    await unlink(full).catch(ignoreMissing);
  }

  /**
   * Moves a verified temp file into content-addressed storage and returns its storage key.
   * When the content is already stored, the temp file is dropped (dedupe).
   */
  async commit(tempPath: string, sha256: string): Promise<string> {
    const key = ContentStorage.storageKeyFor(sha256);
    const target = this.pathOf(key);
    const temp = contained(this.tmpDir, relative(this.tmpDir, resolve(tempPath)));
    if (await this.exists(key)) {
      await unlink(temp).catch(ignoreMissing);
      return key;
    }
    await mkdir(resolve(target, '..'), { recursive: true, mode: 0o700 });
    await rename(temp, target);
    return key;
  }

  /** Removes a stored content; a missing file is fine. */
  async remove(storageKey: string): Promise<void> {
    this.smallFiles.delete(storageKey);
    await unlink(this.pathOf(storageKey)).catch(ignoreMissing);
  }

  /** Temp files left by a crash; only old ones, since another replica may share the directory. */
  private async sweepStaleTemp(): Promise<void> {
    const now = Date.now();
    for (const name of await readdir(this.tmpDir)) {
      if (!TEMP_NAME.test(name)) continue;
      const path = join(this.tmpDir, name);
      try {
        if (now - (await stat(path)).mtimeMs > STALE_TEMP_MS) {
          await unlink(path);
          this.logger.log(`removed stale upload ${path}`);
        }
      } catch (error) {
        ignoreMissing(error);
      }
    }
  }
}
