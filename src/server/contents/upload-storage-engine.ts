import { createHash } from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { Injectable, PayloadTooLargeException } from '@nestjs/common';
import type { UploadedFileInfo, UploadStorageEngine } from '../http/uploads.js';
import { ContentStorage } from './content-storage.js';

/** What the engine adds to the uploaded file: the temp path plus size and digests computed on the way. */
export interface HashedUpload {
  path: string;
  size: number;
  sha256: string;
  crc32: number;
}

/** The file a route handler receives through `@UploadedFile()` when this engine is in use. */
export type StoredUpload = UploadedFileInfo & HashedUpload;

/** Passes chunks through while computing SHA-256, CRC-32 and the byte count. */
export class DigestingStream extends Transform {
  private readonly hash = createHash('sha256');
  private crc = 0;
  size = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.crc = crc32(chunk, this.crc);
    this.size += chunk.length;
    callback(null, chunk);
  }

  /** Call once, after the stream has ended. */
  result(): { size: number; sha256: string; crc32: number } {
    return { size: this.size, sha256: this.hash.digest('hex'), crc32: this.crc >>> 0 };
  }
}

/**
 * The upload storage engine (see src/server/http/uploads.ts): streams the upload to a temp file under
 * DATA_DIR/tmp while hashing it; nothing is buffered whole. The route handler moves the temp file into content storage.
 * A file cut short by the size limit (busboy truncates it) is removed and answered 413.
 */
@Injectable()
export class ContentUploadEngine implements UploadStorageEngine {
  constructor(private readonly storage: ContentStorage) {}

  _handleFile(_req: unknown, file: UploadedFileInfo, callback: (error?: unknown, info?: Partial<UploadedFileInfo>) => void): void {
    this.store(file).then(
      (info) => callback(null, info),
      (error: unknown) => callback(error),
    );
  }

  _removeFile(_req: unknown, file: UploadedFileInfo, callback: (error: Error | null) => void): void {
    if (!file.path) return callback(null);
    this.storage.removeTemp(file.path).then(
      () => callback(null),
      (error: Error) => callback(error),
    );
  }

  /** Streams `file.stream` to a temp file; exposed for tests. */
  async store(file: { stream: NodeJS.ReadableStream }): Promise<HashedUpload> {
    const source = file.stream as NodeJS.ReadableStream & { truncated?: boolean };
    let truncated = false;
    source.on('limit', () => (truncated = true));
    const temp = this.storage.createTempFile();
    const digest = new DigestingStream();
    try {
      await pipeline(source, digest, temp.stream);
      if (truncated || source.truncated === true)
        throw new PayloadTooLargeException('the upload exceeds the size limit (MAX_UPLOAD_BYTES)');
    } catch (error) {
      await this.storage.removeTemp(temp.path);
      throw error;
    }
    return { path: temp.path, ...digest.result() };
  }
}
